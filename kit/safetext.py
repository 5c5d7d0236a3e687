"""Text from participants made safe for where it goes: a terminal line, a page, a spreadsheet.

File names, participant and model names and lines quoted from submissions are written by
whoever sent them. Two things can go wrong when such text is shown as it is:

- control characters act instead of being shown: an ANSI escape recolours or clears the
  terminal, a newline forges a second log line or table row, a bidi override (U+202E)
  makes ``evil\\u202eVSC.csv`` read as ``evilcsv.CSV``, a NUL cuts the text short;
- a spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or
  carriage return before one) as a formula, which can fetch URLs or run commands.

:func:`printable` shows every control character as a visible escape; :func:`spreadsheet_cell`
neutralises a text cell for a CSV file, and :func:`from_spreadsheet_cell` undoes it when the
kit reads its own CSV back. Numbers are not text: a negative score stays ``-0.5``.
"""

#: First characters that make a spreadsheet read a cell as a formula (OWASP's list, plus
#: the full-width forms some locales convert), and the quote used to neutralise them,
#: which is itself escaped so that neutralising can be undone exactly.
FORMULA_STARTS = frozenset("=+-@\t\r\n'\uff1d\uff0b\uff0d\uff20")
NEUTRAL_PREFIX = "'"


def printable(text, limit=None):
    """``text`` on one line with every non-printable character shown as an escape.

    Control characters (C0, C1, DEL), format characters (bidi overrides and isolates,
    zero-width joiners), line and paragraph separators and unusual spaces become
    ``\\x1b``, ``\\u202e`` ... as Python's ``repr`` writes them; everything else is kept.

    Parameters
    ----------
    text : object
        Converted with ``str``.
    limit : int, optional
        Keep at most this many characters of the result (``...`` marks a cut).

    Examples
    --------
    >>> printable("evil\\u202eVSC.csv")
    'evil\\\\u202eVSC.csv'
    >>> printable("a\\x1b[31mred\\nline")
    'a\\\\x1b[31mred\\\\nline'
    >>> printable("José Pérez")
    'José Pérez'
    """
    text = str(text)
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    if limit is not None and len(text) > limit:
        text = text[: max(0, limit - 3)] + "..."
    return text


def one_line(text, limit=None):
    """``text`` as one line: non-printable characters become spaces, runs of space one space.

    For short labels a participant chose (a model or file name in the leaderboard log):
    unlike :func:`printable`, nothing is escaped, so the label reads as written.

    Parameters
    ----------
    text : object
        Converted with ``str``; None is empty.
    limit : int, optional
        Keep at most this many characters.

    Examples
    --------
    >>> one_line("my\\tmodel\\n v2")
    'my model v2'
    >>> one_line("abcdef", 3)
    'abc'
    """
    text = "".join(ch if ch.isprintable() else " " for ch in str(text or ""))
    return " ".join(text.split())[:limit]


def spreadsheet_cell(text):
    """A CSV text cell that a spreadsheet shows instead of running.

    A cell whose first non-blank character could start a formula gets a leading ``'``
    (a cell that already starts with ``'`` gets one too, so :func:`from_spreadsheet_cell`
    restores every cell exactly). Apply it to text columns only, never to numbers.

    Examples
    --------
    >>> spreadsheet_cell("=HYPERLINK(\\"http://x\\")")
    '\\'=HYPERLINK("http://x")'
    >>> spreadsheet_cell("alice")
    'alice'
    >>> from_spreadsheet_cell(spreadsheet_cell("@SUM(A1)")) == "@SUM(A1)"
    True
    """
    text = str(text)
    first = text.lstrip(" ")[:1]
    if first and first in FORMULA_STARTS:
        return NEUTRAL_PREFIX + text
    return text


def from_spreadsheet_cell(text):
    """Undo :func:`spreadsheet_cell` (for cells the kit wrote itself).

    Examples
    --------
    >>> from_spreadsheet_cell("'-rm")
    '-rm'
    >>> from_spreadsheet_cell("plain")
    'plain'
    """
    text = str(text)
    if text.startswith(NEUTRAL_PREFIX) and text[1:].lstrip(" ")[:1] in FORMULA_STARTS:
        return text[1:]
    return text
