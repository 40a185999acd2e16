"""The one exception type the CLI turns into a clear one-line error and a non-zero exit."""

from __future__ import annotations


class FacecliError(Exception):
    """A user-facing error: bad input, wrong layout, a file that is not a facecli model.

    The CLI prints ``error: <message>`` on one line and exits with status 2; no traceback.
    """


class AllInputsFailed(FacecliError):
    """Every input of a batch failed to be read; the CLI prints the message and exits with status 1."""
