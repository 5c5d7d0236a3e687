"""Exceptions that reach the user as one line and exit code 2."""


class UserError(ValueError):
    """A problem with what the user gave us (a file, an option, a name).

    The command line prints its message as one line on stderr and exits with code 2.
    Messages say what was expected, what was found, and where.
    """


class SubmissionError(UserError):
    """A submission file that breaks a rule of the format (``id,similarity``, one row per test pair, finite numbers)."""


def first_line(exc, limit=200):
    """The first line of an exception's message (at most ``limit`` characters), for a one-line error.

    Third-party readers (gzip, Keras, matchms) raise messages of many lines; a one-line
    error quotes the first.

    Examples
    --------
    >>> first_line(ValueError("bad header\\n  at line 3"))
    'bad header'
    >>> first_line(ValueError(""))
    'no details'
    """
    text = str(exc).strip().splitlines()
    return text[0][:limit] if text else "no details"
