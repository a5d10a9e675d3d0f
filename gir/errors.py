"""Errors a user can act on. The CLI prints them as one line and exits non-zero."""


class GirError(Exception):
    """An expected failure with a message meant for the user (no traceback)."""

    exit_code = 2


class BadImageError(GirError):
    """An input file that is not a usable image (empty, truncated, not an image, too big)."""


class GateFailed(GirError):
    """The quality gate rejected too much of the data."""

    exit_code = 3
