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

#: Unicode's Default_Ignorable_Code_Point ranges (inclusive), from DerivedCoreProperties.txt
#: of the Unicode Character Database (unchanged from Unicode 14 to 16): characters a
#: renderer shows as nothing when it has no glyph for them (soft hyphen, combining grapheme
#: joiner, zero-width space and joiners, bidi marks and overrides, word joiner and invisible
#: operators, Hangul fillers, variation selectors, the BOM, tags). Written out because
#: :mod:`unicodedata` lacks the property; several of them are letters or combining marks
#: (categories Lo and Mn), so a check by category alone lets them through.
DEFAULT_IGNORABLE_RANGES = (
    (0x00AD, 0x00AD),    # SOFT HYPHEN
    (0x034F, 0x034F),    # COMBINING GRAPHEME JOINER
    (0x061C, 0x061C),    # ARABIC LETTER MARK
    (0x115F, 0x1160),    # HANGUL CHOSEONG FILLER, HANGUL JUNGSEONG FILLER
    (0x17B4, 0x17B5),    # KHMER VOWEL INHERENT AQ, AA
    (0x180B, 0x180F),    # MONGOLIAN FREE VARIATION SELECTORS ONE-THREE, VOWEL SEPARATOR, FVS FOUR
    (0x200B, 0x200F),    # ZERO WIDTH SPACE, ZWNJ, ZWJ, LEFT-TO-RIGHT MARK, RIGHT-TO-LEFT MARK
    (0x202A, 0x202E),    # bidi embeddings and overrides
    (0x2060, 0x206F),    # WORD JOINER, invisible operators, bidi isolates, deprecated format characters
    (0x3164, 0x3164),    # HANGUL FILLER
    (0xFE00, 0xFE0F),    # VARIATION SELECTOR-1..16
    (0xFEFF, 0xFEFF),    # ZERO WIDTH NO-BREAK SPACE (byte order mark)
    (0xFFA0, 0xFFA0),    # HALFWIDTH HANGUL FILLER
    (0xFFF0, 0xFFF8),    # reserved
    (0x1BCA0, 0x1BCA3),  # SHORTHAND FORMAT CONTROLS
    (0x1D173, 0x1D17A),  # MUSICAL SYMBOL BEGIN BEAM..END PHRASE
    (0xE0000, 0xE0FFF),  # tags (E0000-E007F), VARIATION SELECTOR-17..256 (E0100-E01EF), reserved
)


def is_default_ignorable(ch):
    """Whether the character ``ch`` is a Unicode Default_Ignorable_Code_Point (invisible).

    Examples
    --------
    >>> is_default_ignorable("\u034f"), is_default_ignorable("\ufe0f"), is_default_ignorable("e")
    (True, True, False)
    """
    code = ord(ch)
    return any(low <= code <= high for low, high in DEFAULT_IGNORABLE_RANGES)


def _visible(ch):
    return ch.isprintable() and not is_default_ignorable(ch)


def _escape(ch):
    """``ch`` as Python writes it in a string literal: ``\\x1b``, ``\\u034f``, ``\\U000e0100``."""
    if not ch.isprintable():
        return repr(ch)[1:-1]
    code = ord(ch)  # repr shows a printable but invisible character as itself
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text, limit=None):
    """``text`` on one line with every non-printable character shown as an escape.

    Control characters (C0, C1, DEL), format characters (bidi overrides and isolates,
    zero-width joiners), line and paragraph separators, unusual spaces and every
    default-ignorable character (the combining grapheme joiner, variation selectors, the
    soft hyphen, Hangul fillers: they look like nothing) become ``\\x1b``, ``\\u202e``,
    ``\\u034f`` ... as Python's ``repr`` writes them; everything else is kept.

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
    >>> printable("zoe\\u034f"), printable("zoe\\U000e0100")
    ('zoe\\\\u034f', 'zoe\\\\U000e0100')
    >>> printable("José Pérez")
    'José Pérez'
    """
    text = str(text)
    if not all(map(_visible, text)):
        text = "".join(ch if _visible(ch) else _escape(ch) for ch in text)
    if limit is not None and len(text) > limit:
        text = text[: max(0, limit - 3)] + "..."
    return text


def one_line(text, limit=None):
    """``text`` as one line: non-printable characters become spaces, runs of space one space.

    For short labels a participant chose (a model or file name in the leaderboard log):
    unlike :func:`printable`, nothing is escaped, so the label reads as written, and
    default-ignorable characters (which look like nothing) are dropped.

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
    # Default-ignorable characters render as nothing: dropped, so that an invisible joiner
    # or variation selector cannot make two labels that look the same differ.
    text = "".join(" " if not ch.isprintable() else ch for ch in str(text or "") if not is_default_ignorable(ch))
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
