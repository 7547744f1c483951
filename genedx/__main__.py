from genedx.cli import main

main()
