"""genedx: rank the genes most likely to cause a rare-disease case report."""

__version__ = "0.1.0"
