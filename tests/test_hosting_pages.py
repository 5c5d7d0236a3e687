"""What hosts are told about a competition (kit.hosting.pages): the daily limit a host needs."""
import pytest

from kit.competition.folder import DEFAULT_DAILY_LIMIT, Competition
from kit.errors import UserError
from kit.hosting.pages import daily_limit


def competition(tmp_path, **metadata):
    return Competition(path=tmp_path, metadata={"name": "c", **metadata})


@pytest.mark.parametrize("value", [1, 3, 10**6])
def test_daily_limit_is_competition_json_s(tmp_path, value):
    assert daily_limit(competition(tmp_path, max_daily_submissions=value)) == value


def test_daily_limit_defaults_to_the_classroom_modes(tmp_path):
    assert daily_limit(competition(tmp_path)) == DEFAULT_DAILY_LIMIT


# competition.json is a file anyone may have edited: every wrong value is one UserError naming it.
@pytest.mark.parametrize(
    "value, found",
    [(0, "found 0"), (-2, "found -2"), (None, "found NoneType None"), ("3", "found str '3'"),
     (2.5, "found float 2.5"), (True, "found bool True"), ([3], "found list [3]"), ({"n": 3}, "found dict")],
)
def test_a_daily_limit_a_host_cannot_express_is_refused_naming_the_file(tmp_path, value, found):
    with pytest.raises(UserError, match=r"competition\.json: max_daily_submissions must be an integer >= 1, ") as info:
        daily_limit(competition(tmp_path, max_daily_submissions=value))
    assert found in str(info.value) and "\n" not in str(info.value)
