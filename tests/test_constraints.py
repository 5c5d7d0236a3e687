"""One way to declare and check parameters: estimators, the command line and the server's settings."""
import argparse
from numbers import Integral, Real

import numpy as np
import pytest

from kit.constraints import Boolean, Each, Interval, Options, OrNone, argparse_type, check_param, parse_param, validate_params
from kit.errors import UserError

POSITIVE_INT = Interval(Integral, 1, None)
SHARE = Interval(Real, 0, 1, closed="right")


@pytest.mark.parametrize("constraint, value, expected", [
    (POSITIVE_INT, 3, 3), (POSITIVE_INT, np.int64(7), 7), (SHARE, 1, 1.0), (SHARE, np.float32(0.5), 0.5),
    (Interval(Real, None, None), -1e300, -1e300), (Options("a", "b"), "b", "b"), (Boolean(), np.bool_(False), False),
    (OrNone(POSITIVE_INT), None, None), (Each(POSITIVE_INT, 1, 3), [1, 2], (1, 2)),
])
def test_allowed_values_come_back_converted(constraint, value, expected):
    got = check_param(value, "p", constraint)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize("constraint, value, error", [
    (POSITIVE_INT, 0, UserError), (POSITIVE_INT, -5, UserError), (POSITIVE_INT, True, TypeError),
    (POSITIVE_INT, 2.0, TypeError), (POSITIVE_INT, "3", TypeError), (POSITIVE_INT, None, TypeError),
    (SHARE, 0, UserError), (SHARE, 1.0000001, UserError), (SHARE, float("nan"), UserError),
    (SHARE, float("inf"), UserError), (SHARE, False, TypeError), (SHARE, "0.5", TypeError),
    (Options("a", "b"), "c", UserError), (Options("a", "b"), ["a"], UserError), (Options(0, 1), True, TypeError),
    (Boolean(), 1, TypeError), (Boolean(), "yes", TypeError),
    (Each(POSITIVE_INT, 1, 2), [], UserError), (Each(POSITIVE_INT, 1, 2), [1, 2, 3], UserError),
    (Each(POSITIVE_INT), "12", TypeError), (Each(POSITIVE_INT), [1, 0], UserError),
])
def test_refused_values_get_one_line_naming_the_parameter(constraint, value, error):
    with pytest.raises(error) as info:
        check_param(value, "the_param", constraint)
    assert "the_param" in str(info.value) and "\n" not in str(info.value)


def test_validate_params_checks_only_declared_names_and_stops_at_the_first_bad_one():
    constraints = {"epochs": POSITIVE_INT, "dropout": Interval(Real, 0, 1, closed="left")}
    assert validate_params(constraints, {"epochs": 2, "dropout": 0, "seed": "anything"}) == {"epochs": 2, "dropout": 0.0}
    with pytest.raises(UserError, match="dropout must be a number in \\[0, 1\\), found 1.0"):
        validate_params(constraints, {"epochs": 2, "dropout": 1})


@pytest.mark.parametrize("text, expected", [("4", 4), (" 12 ", 12)])
def test_text_is_parsed_then_checked(text, expected):
    assert parse_param(text, "--jobs", POSITIVE_INT) == expected


@pytest.mark.parametrize("text", ["0", "-1", "1.5", "", "1e3", "nan", "abc", "True", "1_0", "\u0663", "\uff13", "0x10", "3\x00"])
def test_bad_text_is_one_user_error(text):
    with pytest.raises(UserError, match="^--jobs must be an integer >= 1, found"):
        parse_param(text, "--jobs", POSITIVE_INT)


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "0", "1e999", "1_0.5", "\u0663.5", "0x1p3", "1e", "."])
def test_seconds_must_be_finite_and_positive(text):
    with pytest.raises(UserError):
        parse_param(text, "--timeout", Interval(Real, 0, None, closed="neither"))


def test_argparse_type_gives_argparse_its_own_error():
    parser = argparse.ArgumentParser(exit_on_error=False)
    parser.add_argument("--workers", type=argparse_type(POSITIVE_INT, "--workers"))
    assert parser.parse_args(["--workers", "2"]).workers == 2
    with pytest.raises(argparse.ArgumentError, match="argument --workers: expected an integer >= 1, found 0"):
        parser.parse_args(["--workers", "0"])


@pytest.mark.parametrize("kind, closed", [(int, "both"), (Real, "open")])
def test_a_wrong_declaration_fails_at_once(kind, closed):
    with pytest.raises((TypeError, ValueError)):
        Interval(kind, 0, 1, closed=closed)


@pytest.mark.parametrize("text, expected", [("+3", 3), ("2.5", 2.5), (".5", 0.5), ("5.", 5.0), ("1e-3", 0.001), ("1E2", 100.0)])
def test_ascii_numbers_as_people_type_them(text, expected):
    kind = Integral if isinstance(expected, int) else Real
    assert parse_param(text, "--x", Interval(kind, None, None)) == expected
