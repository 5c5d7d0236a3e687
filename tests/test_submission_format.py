"""kit.submission_format: rules added for hostile submissions (extra empty fields, overflowing values,
control characters in names and lines). The main format rules are tested in test_scoring.py."""
import numpy as np
import pytest

from kit.errors import SubmissionError
from kit.submission_format import MAX_ABS_VALUE, read_submission

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
