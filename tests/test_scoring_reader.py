"""kit.scoring.reader, the one reader of submissions: hostile files (extra empty fields, overflowing
values, control characters, other encodings, links and special files), the value of every valid spelling,
and its two paths agreeing. The rules through ``kit score`` are tested in test_scoring_scorer.py."""
import ast
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kit.errors import SubmissionError
from kit.scoring import reader as submission_format
from kit.scoring.reader import MAX_ABS_VALUE, read_submission

IDS = [0, 1, 2]


def write(tmp_path, text, name="s.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def refused(path, match):
    with pytest.raises(SubmissionError, match=match) as info:
        read_submission(path, expected_ids=IDS)
    message = str(info.value)
    assert "\n" not in message and message.isprintable()
    return message


@pytest.mark.parametrize("rows", [
    "0,0.5,\n1,0.5\n2,0.5\n",          # trailing empty field on the first row
    "0,0.5\n1,0.5\n2,0.5,\n",          # ... on the last row
    "0,0.5,\n1,0.5,\n2,0.5,\n",        # ... on every row (pandas drops them all)
    "0,0.5,,\n1,0.5\n2,0.5\n",         # two empty fields
    "0,0.5, \n1,0.5\n2,0.5\n",         # an empty field with a space
    "0,0.5,\r\n1,0.5\r\n2,0.5\r\n",    # CRLF
    "0,0.5,\n1,0.5\n2,0.5",            # no final newline
    '0,0.5,""\n1,0.5\n2,0.5\n',        # an empty quoted field
])
def test_trailing_empty_fields_are_refused_like_any_extra_column(tmp_path, rows):
    message = refused(write(tmp_path, "id,similarity\n" + rows), r"\(2 fields\)")
    assert "3 fields" in message or "4 fields" in message or "extra commas" in message


@pytest.mark.parametrize("header", ["id,similarity,", "id,similarity,,", "id,similarity, "])
def test_header_with_a_trailing_empty_field_is_refused(tmp_path, header):
    refused(write(tmp_path, f"{header}\n0,0.5\n1,0.5\n2,0.5\n"), "wrong header")


@pytest.mark.parametrize("values", [
    ["1e308", "0.5", "0.5"],
    ["-1e308", "0.5", "0.5"],
    ["1.7e308", "-1.7e308", "1e308"],
    ["1.7976931348623157e308", "0.5", "0.5"],
    ["1000000.5", "0.5", "0.5"],
    ["0.5", "-2e6", "0.5"],
    ["1e7", "1e300", "-1e-300"],
])
def test_values_that_overflow_the_metric_are_refused(tmp_path, values):
    rows = "".join(f"{i},{v}\n" for i, v in zip(IDS, values))
    message = refused(write(tmp_path, "id,similarity\n" + rows), r"\[-1e6, 1e6\]")
    assert "line 2" in message or "line 3" in message


@pytest.mark.parametrize("value", [MAX_ABS_VALUE, -MAX_ABS_VALUE, 1.5, -0.25, 1e-300])
def test_values_up_to_the_bound_are_scored_with_a_warning(tmp_path, value):
    path = write(tmp_path, f"id,similarity\n0,{value!r}\n1,0.5\n2,0.5\n")
    submission = read_submission(path, expected_ids=IDS)
    assert np.isfinite(submission.values).all()
    assert bool(submission.warnings) == (not 0 <= value <= 1)


@pytest.mark.parametrize("name", ["evil\x1b[31m.csv", "a\u202eVSC.csv", "new\nline.csv", "bell\x07.csv"])
def test_messages_never_carry_control_characters_from_the_file_name(tmp_path, name):
    message = refused(write(tmp_path, "id,similarity\n0,x\n1,0.5\n2,0.5\n", name=name), "finite number")
    assert "\\" in message


@pytest.mark.parametrize("value", ["\x1b[2J", "\u202e1", "0.5\x00"])
def test_quoted_lines_never_carry_control_characters(tmp_path, value):
    refused(write(tmp_path, f"id,similarity\n0,{value}\n1,0.5\n2,0.5\n"), "line 2|binary")


# --- one reader: what is valid, and the value of every valid spelling -----------------

VALID = [
    # name, rows, values of ids 0, 1, 2
    ("plain", "0,0.5\n1,0.25\n2,1\n", [0.5, 0.25, 1.0]),
    ("CRLF", "0,0.5\r\n1,0.25\r\n2,1\r\n", [0.5, 0.25, 1.0]),
    ("CR only", "0,0.5\r1,0.25\r2,1\r", [0.5, 0.25, 1.0]),
    ("mixed line ends, no final one", "0,0.5\r\n1,0.25\r2,1", [0.5, 0.25, 1.0]),
    ("blank lines", "\n0,0.5\n \t\n1,0.25\n\n2,1\n\n", [0.5, 0.25, 1.0]),
    ("spaces and tabs", " 0 ,  1.0\n1,\t+.5\t\n 2\t,\t5.\n", [1.0, 0.5, 5.0]),
    ("quoted fields", '"0","0.5"\n "1" , "0.25" \n2,"1"\n', [0.5, 0.25, 1.0]),
    ("signed and zero-padded ids", "+0,0.5\n001,0.25\n-0002,1\n".replace("-0002", "0002"), [0.5, 0.25, 1.0]),
    ("exponents", "0,2.5e-1\n1,25E-2\n2,1e0\n", [0.25, 0.25, 1.0]),
    ("negative zero and underflow", "0,-0\n1,-1e-400\n2,1e-320\n", [-0.0, -0.0, 1e-320]),
    ("long spellings", "0,0.1234567890123456789012345\n1,0.30000000000000004441\n2,0." + "3" * 398 + "\n",
     [0.1234567890123456789012345, 0.30000000000000004441, float("0." + "3" * 398)]),
    ("the longest field, plain", "0,0." + "3" * 398 + "\n1," + "0" * 399 + "1\n2,1\n",
     [float("0." + "3" * 398), 1.0, 1.0]),
    ("the longest field, quoted and padded", '0, "0.' + "3" * 398 + '"  \n1,0.25\n2,1\n',
     [float("0." + "3" * 398), 0.25, 1.0]),
    ("a field past the csv module's limit", "0,0.5" + " " * 200_000 + "\n1,0.25\n2,1\n", [0.5, 0.25, 1.0]),
    ("an id with 399 leading zeros", "0" * 399 + "1,0.25\n0,0.5\n2,1\n", [0.5, 0.25, 1.0]),
]


@pytest.mark.parametrize("name, rows, values", VALID, ids=[v[0] for v in VALID])
def test_valid_spellings_and_their_values(tmp_path, name, rows, values):
    submission = read_submission(write(tmp_path, "id,similarity\n" + rows), expected_ids=IDS)
    assert [v.hex() for v in submission.aligned_values().tolist()] == [float(v).hex() for v in values]


INVALID = [
    # name, rows, words of the message
    ("unit separator after a value", "0,0.5\x1f\n1,0.5\n2,0.5\n", "control character 0x1f on line 2"),
    ("file separator", "0,0.5\n1,\x1c0.5\n2,0.5\n", "control character 0x1c on line 3"),
    ("vertical tab", "0,0.5\x0b\n1,0.5\n2,0.5\n", "control character 0x0b"),
    ("form feed", "0,0.5\n\x0c1,0.5\n2,0.5\n", "control character 0x0c on line 3"),
    ("backspace", "0,0.5\n1,0.5\n2,0\x08.5\n", "control character 0x08 on line 4"),
    ("delete", "0,0.5\x7f\n1,0.5\n2,0.5\n", "control character 0x7f"),
    ("escape after CR-only lines", "0,0.5\r1,0.5\r2,\x1b0.5\r", "control character 0x1b on line 4"),
    ("NUL", "0,0.5\x00\n1,0.5\n2,0.5\n", "NUL byte on line 2"),
    ("nan", "0,nan\n1,0.5\n2,0.5\n", "line 2: 'nan'"),
    ("NaN", "0,NaN\n1,0.5\n2,0.5\n", "finite number"),
    ("inf", "0,-inf\n1,0.5\n2,0.5\n", "line 2: '-inf'"),
    ("Infinity", "0,Infinity\n1,0.5\n2,0.5\n", "finite number"),
    ("1e999", "0,1e999\n1,0.5\n2,0.5\n", "'1e999' overflows"),
    ("hexadecimal float", "0,0x1p-3\n1,0.5\n2,0.5\n", "decimal numbers only"),
    ("underscore", "0,1_0\n1,0.5\n2,0.5\n", "no '_' between digits"),
    ("Arabic digits", "0,\u0661\u066b\u0665\n1,0.5\n2,0.5\n", "only ASCII digits"),
    ("Arabic digits, ASCII point", "0,\u0661.\u0665\n1,0.5\n2,0.5\n", "only ASCII digits"),
    ("Arabic id", "\u0660,0.5\n1,0.5\n2,0.5\n", "id '\u0660'"),
    ("fullwidth digits", "0,\uff10.\uff15\n1,0.5\n2,0.5\n", "only ASCII digits"),
    ("no-break space", "0,\u00a00.5\n1,0.5\n2,0.5\n", "only ASCII digits"),
    ("ideographic space", "0,0.5\u3000\n1,0.5\n2,0.5\n", "only ASCII digits"),
    ("line separator", "0,0.5\u2028\n1,0.5\n2,0.5\n", "only ASCII digits"),
    ("space inside a number", "0,0. 5\n1,0.5\n2,0.5\n", "'0. 5' is not a number"),
    ("spaces inside quotes", '0," 0.5"\n1,0.5\n2,0.5\n', "' 0.5' is not a number"),
    ("escaped quote", '0,"0""5"\n1,0.5\n2,0.5\n', "is not a number"),
    ("quoted newline", '0,"0.5\n"\n1,0.5\n2,0.5\n', "quotes must close on the line they open: line 2"),
    ("quoted comma", '0,"0,5"\n1,0.5\n2,0.5\n', "'0,5' is not a number"),
    ("lone point", "0,.\n1,0.5\n2,0.5\n", "'.' is not a number"),
    ("exponent without digits", "0,1e\n1,0.5\n2,0.5\n", "'1e' is not a number"),
    ("two signs", "0,+-1\n1,0.5\n2,0.5\n", "'+-1' is not a number"),
    ("float id", "0.0,0.5\n1,0.5\n2,0.5\n", "id '0.0'"),
    ("exponent id", "0,0.5\n1e0,0.5\n2,0.5\n", "id '1e0'"),
    ("id past int64", "9223372036854775808,0.5\n1,0.5\n2,0.5\n", "out of range"),
    ("id of 400 nines", "9" * 400 + ",0.5\n1,0.5\n2,0.5\n", "out of range"),
    ("id of 5,000 nines", "9" * 5000 + ",0.5\n1,0.5\n2,0.5\n", "line 2: a field of 5,000 characters"),
    ("id with 5,000 leading zeros", "0" * 5000 + "1,0.25\n0,0.5\n2,1\n", "line 2: a field of 5,001 characters"),
    ("value of 5,000 digits", "0,0." + "3" * 5000 + "\n1,0.5\n2,0.5\n", "line 2: a field of 5,002 characters"),
    ("value of 401 characters, plain", "0,0." + "3" * 399 + "\n1,0.5\n2,0.5\n", "a field of 401 characters"),
    ("empty value", "0,\n1,0.5\n2,0.5\n", "line 2: empty value"),
    ("empty quoted value", '0,""\n1,0.5\n2,0.5\n', "line 2: empty value"),
    ("semicolon after a value", "0,0.5;\n1,0.5\n2,0.5\n", "'0.5;' is not a number"),
    ("huge field and a repeated id", "0,0.5" + " " * 200_000 + "\n1,0.5\n1,0.5\n2,0.5\n", "id 1 on lines 3 and 4"),
    ("huge unreadable field", "0,0.5" + "x" * 200_000 + "\n1,0.5\n2,0.5\n",
     "line 2: a field of 200,003 characters starting '0.5xxxxxxxxxxxxxxxxxx...'"),
]


@pytest.mark.parametrize("name, rows, words", INVALID, ids=[v[0] for v in INVALID])
def test_invalid_spellings_are_one_line_naming_the_line(tmp_path, name, rows, words):
    message = refused(write(tmp_path, "id,similarity\n" + rows), ".")
    assert words in message and len(message) < 600


@pytest.mark.parametrize("encoding, words", [
    ("utf-16", "UTF-16 byte-order mark"), ("utf-16-le", "NUL byte"), ("utf-16-be", "NUL byte"),
    ("utf-32", "UTF-32 byte-order mark"), ("utf-8-sig", "UTF-8 byte-order mark"), ("latin-1", "not UTF-8"),
])
def test_other_encodings_are_refused(tmp_path, encoding, words):
    refused(write(tmp_path, "id,similarity\n0,0.5\n1,0.5\n2,0.5é\n".encode(encoding)), words)


def test_a_million_columns_is_one_short_line(tmp_path):
    path = write(tmp_path, "id,similarity\n0," + "1," * 10**6 + "\n1,0.5\n2,0.5\n")
    with pytest.raises(SubmissionError, match="2 fields") as info:
        read_submission(path)  # rows unknown: the largest cap
    assert "line 2: 1,000,002 fields '0,1,1,1,1,1,1,1,1,1,1...'" in str(info.value) and len(str(info.value)) < 300


def test_a_file_declaring_gigabytes_is_refused_unread(tmp_path):
    path = write(tmp_path, "id,similarity\n0,0.5")
    with open(path, "r+b") as handle:
        handle.truncate(2**31)  # sparse: 2 GiB of NULs on the first data line
    refused(path, "too large")


# --- what is read: regular files with one name only -----------------------------------


def _valid(tmp_path, name="real.csv"):
    return write(tmp_path, "id,similarity\n0,0.5\n1,0.5\n2,0.5\n", name=name)


@pytest.mark.parametrize("kind, words", [
    ("link", "is a symbolic link"), ("dangling link", "is a symbolic link"), ("folder link", "is a symbolic link"),
    ("hard link", "is a hard link"), ("named pipe", "not a regular file"), ("folder", "is a folder"),
    ("device", "not a regular file"), ("missing", "file not found"),
])
def test_only_regular_files_with_one_name_are_read(tmp_path, kind, words):
    path = tmp_path / "s.csv"
    if kind == "link":
        path.symlink_to(_valid(tmp_path))
    elif kind == "dangling link":
        path.symlink_to(tmp_path / "nowhere.csv")
    elif kind == "folder link":
        path.symlink_to(tmp_path, target_is_directory=True)
    elif kind == "hard link":
        try:
            os.link(_valid(tmp_path), path)
        except OSError as exc:
            pytest.skip(f"cannot make a hard link here: {exc}")
    elif kind == "named pipe":
        os.mkfifo(path)  # opened without blocking, or refused before: the test would hang otherwise
    elif kind == "folder":
        path.mkdir()
    elif kind == "device":
        path = Path(os.devnull)
    refused(path, words)


def test_a_file_swapped_for_a_link_after_the_check_is_refused(tmp_path, monkeypatch):
    path, secret = _valid(tmp_path, "s.csv"), _valid(tmp_path, "secret.csv")
    real_open = os.open

    def swap_then_open(name, flags, *args):
        if str(name) == str(path):
            path.unlink()
            path.symlink_to(secret)
        return real_open(name, flags, *args)

    monkeypatch.setattr(submission_format.os, "open", swap_then_open)
    refused(path, "cannot read|changed while")


# --- every value is float()'s, on both paths, whatever pandas is ----------------------

finite = st.floats(min_value=-MAX_ABS_VALUE, max_value=MAX_ABS_VALUE, allow_nan=False, allow_infinity=False)
spellings = st.sampled_from(["{!r}", "{:.17g}", "{:.25e}", "{:.30f}", "{:.3e}", "{:+.20f}"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.tuples(finite, spellings), min_size=3, max_size=3), padded=st.booleans())
def test_values_are_floats_correctly_rounded_value_bit_for_bit(tmp_path, monkeypatch, values, padded):
    texts = [spelling.format(value) for value, spelling in values]
    pad = " " if padded else ""  # spaces send the file to the line reader
    path = write(tmp_path, "id,similarity\n" + "".join(f"{i},{pad}{t}\n" for i, t in zip(IDS, texts)))
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "pandas", None)  # `import pandas` would fail: the reader never tries
        got = read_submission(path, expected_ids=IDS).aligned_values().tolist()
    assert [v.hex() for v in got] == [float(t).hex() for t in texts]


def test_the_reader_imports_neither_pandas_nor_csv():
    tree = ast.parse(Path(submission_format.__file__).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not {"pandas", "csv"} & {name.split(".")[0] for name in imported}


@settings(max_examples=200, deadline=None, derandomize=True)
@given(body=st.text(alphabet="0123456789+-.eE,\n", max_size=60))
def test_plain_row_path_agrees_with_the_line_reader(body):
    # The fast path may only take a file the line reader takes, with the same numbers.
    data = ("id,similarity\n" + body).encode()
    outcomes = []
    for parse in (submission_format._parse, submission_format._parse_lines):
        doc = submission_format._Document(Path("s.csv"), data, len("id,similarity\n"))
        try:
            ids, values = parse(doc)
            outcomes.append((ids.tolist(), [v.hex() for v in values.tolist()], doc.line_of(range(ids.size))))
        except SubmissionError as exc:
            outcomes.append(str(exc))
    assert outcomes[0] == outcomes[1]


def test_ids_other_than_0_to_n_are_matched(tmp_path):
    path = write(tmp_path, "id,similarity\n30,0.3\n10,0.1\n20,0.2\n")
    assert read_submission(path, expected_ids=[10, 20, 30]).aligned_values().tolist() == [0.1, 0.2, 0.3]
    with pytest.raises(SubmissionError, match=r"unknown ids: .* line 2: id 30"):
        read_submission(path, expected_ids=[10, 20, 31])


@settings(max_examples=300, deadline=None, derandomize=True)
@given(line=st.text(alphabet='0123456789+-.eE, \t"x', max_size=30))
def test_the_usual_row_shortcut_agrees_with_the_row_rules(line):
    quick = submission_format._usual_row(line)
    if quick is not None:
        problem, parsed = submission_format._parse_row(line)
        assert problem is None and parsed[0] == quick[0] and parsed[1].hex() == quick[1].hex()


# What the reader says is shown as it is on web pages too (the classroom site, Codabench):
# no Markdown marks, which a page would show as stray backticks.
WHOLE_FILES = [
    ("empty", ""),
    ("blank first line", "\nid,similarity\n0,0.5\n1,0.5\n2,0.5\n"),
    ("no header", "0,0.5\n1,0.5\n2,0.5\n"),
    ("wrong header", "id,prediction\n0,0.5\n1,0.5\n2,0.5\n"),
    ("semicolons", "id;similarity\n0;0.5\n1;0.5\n2;0.5\n"),
    ("tabs", "id\tsimilarity\n0\t0.5\n1\t0.5\n2\t0.5\n"),
    ("three fields", "id,similarity\n0,0.5,1\n1,0.5\n2,0.5\n"),
    ("one field", "id,similarity\n0\n1,0.5\n2,0.5\n"),
    ("missing id", "id,similarity\n0,0.5\n1,0.5\n"),
    ("unknown id", "id,similarity\n0,0.5\n1,0.5\n2,0.5\n7,0.5\n"),
]


@pytest.mark.parametrize("name, text", WHOLE_FILES + [(n, "id,similarity\n" + rows) for n, rows, _ in INVALID],
                         ids=[v[0] for v in WHOLE_FILES] + [v[0] for v in INVALID])
def test_messages_carry_no_markdown_backticks(tmp_path, name, text):
    assert "`" not in refused(write(tmp_path, text), ".")


# --- time linear in the text: no pattern backtracks, long fields are refused by length ------

MIB = 1 << 20
LONG_LINES = [
    # name, the line (a 1 MiB field of one class), the rule named
    ("digits then a letter", "0," + "1" * MIB + "x", "a field of"),
    ("digits, exponent, a letter", "0,1e" + "1" * MIB + "x", "a field of"),
    ("signed digits, point, letter", "0,-" + "1" * MIB + ".5x", "a field of"),
    ("digits, point, digits, letter", "0," + "1" * MIB + "." + "1" * MIB + "x", "a field of"),
    ("quoted digits then a letter", '0,"' + "1" * MIB + 'x"', "a field of"),
    ("an id of digits then a letter", "1" * MIB + "x,0.5", "a field of"),
    ("a signed id, spaces, a letter", "-" + "1" * MIB + " " * 1000 + "x,0.5", "a field of"),
    ("spaces between digits", "0,1" + " 1" * MIB, "a field of"),
    ("quotes in pairs", '0,' + '""' * MIB + "x", "a field of"),
    ("an unclosed quote after digits", '0,"' + "1" * MIB, "not closed"),
    ("spaces then a letter", "0," + " " * MIB + "1x", "'1x' is not a number"),
    ("tabs around digits", "\t" * MIB + "0,1" + "\t" * MIB + "x", "'1\\t\\t\\t"),
    ("commas", "0" + "," * MIB, "fields"),
]


@pytest.mark.parametrize("name, line, words", LONG_LINES, ids=[v[0] for v in LONG_LINES])
def test_long_hostile_lines_are_refused_in_linear_time(tmp_path, name, line, words):
    # 8,000 digits then a letter took 14 s (a 1 MiB line, days): generous bound for a loaded machine.
    path = write(tmp_path, f"id,similarity\n{line}\n1,0.5\n2,0.5\n")
    started = time.perf_counter()
    with pytest.raises(SubmissionError) as info:
        read_submission(path)
    assert time.perf_counter() - started < 2
    message = str(info.value)
    assert words in message and "line 2" in message and len(message) < 600 and "\n" not in message


#: How the reader uses each pattern (a search of _ROW would be quadratic: it is never searched).
PATTERN_USES = [("_VALUE", "fullmatch"), ("_ROW", "fullmatch"), ("_ID", "fullmatch"), ("_NON_FINITE", "fullmatch"),
                ("_QUOTED", "split"), ("_LINE_END", "split"), ("_LINE_END_BYTES", "search")]


@pytest.mark.parametrize("pattern, use", PATTERN_USES)
@pytest.mark.parametrize("text", [
    "1" * 20_000 + "x", "+" + "1" * 20_000 + "e", "1e" + "1" * 20_000 + "x", "1." + "1" * 20_000 + "x",
    "." + "1" * 20_000 + "x", "0," + "1" * 20_000 + "x", '"0","' + "1" * 20_000 + 'x', "0 ," + " " * 20_000 + "x",
    '"' * 20_000 + "x", " \t" * 10_000 + "1", "1" * 10_000 + "." + "1" * 10_000 + "e+x",
], ids=lambda t: repr(t[:6]))
def test_every_pattern_of_the_reader_fails_in_linear_time(pattern, use, text):
    # The length cap keeps such text from the patterns; they must not depend on it. The old
    # value pattern took 14 s on 8,000 digits and a letter.
    regex = getattr(submission_format, pattern)
    subject = text.encode() if isinstance(regex.pattern, bytes) else text
    started = time.perf_counter()
    getattr(regex, use)(subject)
    assert time.perf_counter() - started < 2


def test_the_plain_row_path_refuses_a_long_field_as_the_line_reader_does(tmp_path):
    path = write(tmp_path, "id,similarity\n0,0.5\n1," + "0" * 401 + "\n2,0.5\n")
    assert "line 3: a field of 401 characters" in refused(path, "at most 400 characters")


@pytest.mark.parametrize("padding", [" " * 5000, "\t" * 5000, " \t" * 3000, " " * 300_000])
@pytest.mark.parametrize("where", ["after", "between"])
def test_a_header_padded_past_any_window_is_the_header(tmp_path, padding, where):
    # Spaces and tabs around a header field are ignored as around any field.
    header = "id,similarity" + padding if where == "after" else "id" + padding + "," + padding + "similarity"
    rows = "".join(f"{i},{i / 200}\n" for i in range(200))
    submission = read_submission(write(tmp_path, f"{header}\n{rows}"), expected_ids=range(200))
    assert submission.rows == 200 and submission.aligned_values()[-1] == 199 / 200


@pytest.mark.parametrize("header, words", [
    ("id,similarity" + " " * 5000 + "x", "wrong header"),
    ("id,similarity" + " " * 5000 + ",", "wrong header"),
    (" " * 5000, "first line is blank"),
])
def test_a_long_bad_header_is_named_as_such(tmp_path, header, words):
    message = refused(write(tmp_path, f"{header}\n0,0.5\n1,0.5\n2,0.5\n"), words)
    assert len(message) < 300
