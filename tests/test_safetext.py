"""kit.safetext: participant text made safe for terminals, pages and spreadsheets."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kit.safetext import from_spreadsheet_cell, printable, spreadsheet_cell


@pytest.mark.parametrize("text, shown", [
    ("a\x1b[2Jb", "a\\x1b[2Jb"),            # ANSI: clear the screen
    ("evil\u202eVSC.csv", "evil\\u202eVSC.csv"),  # bidi override
    ("a\u2066b\u2069", "a\\u2066b\\u2069"),   # bidi isolates
    ("nul\x00cut", "nul\\x00cut"),
    ("two\nlines\r", "two\\nlines\\r"),
    ("tab\there", "tab\\there"),
    ("del\x7f c1\x85 \x9b", "del\\x7f c1\\x85 \\x9b"),
    ("line\u2028sep", "line\\u2028sep"),
    ("zero\u200dwidth", "zero\\u200dwidth"),
    ("José Pérez 李", "José Pérez 李"),
    ("back\\slash", "back\\slash"),
])
def test_printable_shows_control_characters_as_escapes(text, shown):
    assert printable(text) == shown
    assert printable(text).isprintable()


def test_printable_limit_and_non_strings():
    assert printable("x" * 50, limit=10) == "xxxxxxx..."
    assert printable(ValueError("a\nb")) == "a\\nb"


@given(st.text())
def test_printable_is_always_one_printable_line(text):
    out = printable(text)
    assert out.isprintable()


@pytest.mark.parametrize("cell", [
    "=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "\n=1", "  =1",
    "'quoted", "\uff1dcmd()", "\uff0b1", "\uff0d1", "\uff20x",
])
def test_formula_cells_are_neutralised(cell):
    out = spreadsheet_cell(cell)
    assert out.startswith("'")
    assert from_spreadsheet_cell(out) == cell


@pytest.mark.parametrize("cell", ["alice", "gbm", "20250101_gbm.csv", "", "a=b", "x-1", "0.5"])
def test_plain_cells_are_unchanged(cell):
    assert spreadsheet_cell(cell) == cell
    assert from_spreadsheet_cell(cell) == cell


@given(st.text())
def test_neutralising_round_trips_and_never_starts_a_formula(text):
    out = spreadsheet_cell(text)
    assert from_spreadsheet_cell(out) == text
    assert out.lstrip(" ")[:1] not in set("=+-@\t\r\n") or out.startswith("'")


# Characters that render as nothing (Unicode Default_Ignorable_Code_Point), several of them
# letters or combining marks that str.isprintable() accepts.
INVISIBLE = [
    "\u00ad", "\u034f", "\u061c", "\u115f", "\u1160", "\u17b4", "\u180b", "\u180c", "\u180d", "\u180e", "\u180f",
    "\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2060", "\u2061", "\u2062", "\u2063", "\u2064", "\u2065",
    "\u3164", "\ufe00", "\ufe0f", "\ufeff", "\uffa0", "\U0001bca0", "\U0001d173",
    "\U000e0000", "\U000e0001", "\U000e0041", "\U000e007f", "\U000e0100", "\U000e01ef", "\U000e0fff",
]


@pytest.mark.parametrize("ch", INVISIBLE)
def test_printable_shows_default_ignorable_characters_as_escapes(ch):
    from kit.safetext import is_default_ignorable, one_line

    assert is_default_ignorable(ch)
    shown = printable(f"zoe{ch}")
    code = ord(ch)
    assert shown == "zoe" + (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    assert ch not in shown and shown.isascii()
    assert one_line(f"zo{ch}e") == "zoe"


@pytest.mark.parametrize("ch", ["e", "\u0301", "\u00e9", "\u0251", " ", "\u1100", "\ufe10", "\U000e1000", "\u2800"])
def test_visible_characters_are_not_default_ignorable(ch):
    from kit.safetext import is_default_ignorable

    assert not is_default_ignorable(ch)


def test_default_ignorable_ranges_match_the_unicode_property():
    """Checked against the third-party ``regex`` module's property tables where it is installed."""
    regex = pytest.importorskip("regex", reason="regex (for its Unicode property tables) is not installed")
    from kit.safetext import is_default_ignorable

    pattern = regex.compile(r"\p{Default_Ignorable_Code_Point}")
    differ = [hex(c) for c in range(0x110000) if is_default_ignorable(chr(c)) != bool(pattern.match(chr(c)))]
    assert not differ
