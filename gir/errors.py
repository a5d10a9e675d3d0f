"""Errors a user can act on. The CLI prints them as one line and exits non-zero; the web
server answers them with their own HTTP status (``status``) and the same line."""


class GirError(Exception):
    """An expected failure with a message meant for the user (no traceback)."""

    exit_code = 2
    status = 400          # HTTP status when a request caused it (gir serve)


class BadImageError(GirError):
    """An input file that is not a usable image (empty, truncated, not an image)."""


class TooLargeError(BadImageError):
    """An upload or image over a size limit (bytes, pixels, decompression bombs)."""

    status = 413


class UnsupportedFormatError(BadImageError):
    """An image in a format GIR does not accept."""

    status = 415


class BusyError(GirError):
    """The server is at its concurrency limit; the client may retry after `retry_after` s."""

    status = 503

    def __init__(self, message: str, retry_after: int = 5):
        super().__init__(message)
        self.retry_after = retry_after


class ProcessingError(GirError):
    """One photo failed in an unexpected way: its failure (one line), not the server's."""

    status = 422


class GateFailed(GirError):
    """The quality gate rejected too much of the data."""

    exit_code = 3
    status = 422
