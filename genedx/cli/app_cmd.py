"""`genedx app`: start the clinician web app (Streamlit) on this machine."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer

from genedx.cli.common import err_console, get_home
from genedx.errors import GenedxError

APP_MAIN = Path(__file__).resolve().parents[2] / "app" / "streamlit_app.py"


def streamlit_argv(port: int, address: str, main: Path = APP_MAIN) -> list[str]:
    """The `streamlit run` command line: headless, no usage statistics, bound to ``address``."""
    return [sys.executable, "-m", "streamlit", "run", str(main),
            "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.address", address, "--server.port", str(port),
            "--server.runOnSave", "false", "--server.fileWatcherType", "none", "--client.toolbarMode", "minimal"]


def app_cmd(
    port: int = typer.Option(8501, "--port", "-p", help="Port to serve on."),
    address: str = typer.Option("127.0.0.1", "--address",
                                help="Interface to bind (default local only; 0.0.0.0 exposes the app to the network)."),
    home: Optional[Path] = typer.Option(None, "--home", help="Data directory (default: the global --home / GENEDX_HOME)."),
) -> None:
    """Start the clinician web app (Diagnose, Batch scoring, Training runs, Datasets).

    On first start with an empty home the app builds the knowledge base and imports the sample cases.
    """
    if not APP_MAIN.is_file():
        raise GenedxError(f"the app is not installed here ({APP_MAIN} is missing): run genedx from a source checkout")
    if not 1 <= port <= 65535:
        raise GenedxError(f"--port {port} is not a valid port (1-65535)")
    h = get_home(home).ensure()
    env = {**os.environ, "GENEDX_HOME": str(h.root)}
    err_console.print(f"genedx app on http://{address}:{port}  (home {h.root}; Ctrl+C to stop)", highlight=False)
    sys.stdout.flush()
    sys.stderr.flush()
    # exec, not a child process: the app's pid is this command's pid, so stopping it stops the server.
    os.execve(sys.executable, streamlit_argv(port, address), env)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.command("app")(app_cmd)
