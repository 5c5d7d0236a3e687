"""Exceptions that reach the user as one line and exit code 2."""


class UserError(ValueError):
    """A problem with what the user gave us (a file, an option, a name).

    The command line prints its message as one line on stderr and exits with code 2.
    Messages say what was expected, what was found, and where.
    """


class SubmissionError(UserError):
    """A submission file that breaks a rule of the format (``id,similarity``, one row per test pair, finite numbers)."""
