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
