"""One exception type for problems a user can fix; the CLI prints it as one line."""


class GenedxError(Exception):
    """A user-facing error: bad input, missing file, missing model dir, unbuilt knowledge base."""
