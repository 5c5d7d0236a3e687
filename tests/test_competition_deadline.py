"""kit.competition.deadline: one reading of a deadline for kit serve, the inbox and both hosting exports."""
import datetime as dt
import json

import pytest

from builders import make_competition
from kit.competition.deadline import competition_deadline, parse_deadline, parse_instant
from kit.competition.folder import load_competition
from kit.errors import UserError
from kit.hosting.files import competition_deadline as hosted_deadline
from kit.server.app import create_app

UTC = dt.timezone.utc


@pytest.mark.parametrize("text, expected", [
    ("2027-02-01", dt.datetime(2027, 2, 1, 23, 59, tzinfo=UTC)),          # a day alone: its last minute
    ("2027-02-01Z", dt.datetime(2027, 2, 1, 23, 59, tzinfo=UTC)),
    (" 2027-02-01 ", dt.datetime(2027, 2, 1, 23, 59, tzinfo=UTC)),
    ("2027-02-01T12:00", dt.datetime(2027, 2, 1, 12, 0, tzinfo=UTC)),     # naive: UTC
    ("2027-02-01 12:00:30", dt.datetime(2027, 2, 1, 12, 0, 30, tzinfo=UTC)),
    ("2027-02-01T12:00+01:00", dt.datetime(2027, 2, 1, 11, 0, tzinfo=UTC)),
    ("2027-02-01T00:30+01:00", dt.datetime(2027, 1, 31, 23, 30, tzinfo=UTC)),
    ("2027-02-01T12:00:00.000Z", dt.datetime(2027, 2, 1, 12, 0, tzinfo=UTC)),
])
def test_parse_deadline_has_one_meaning(text, expected):
    assert parse_deadline(text, "competition.json deadline") == expected


@pytest.mark.parametrize("value, expected", [
    (None, None), ("", None),
    (dt.datetime(2027, 2, 1, 12, 0), dt.datetime(2027, 2, 1, 12, 0, tzinfo=UTC)),
    (dt.datetime(2027, 2, 1, 13, 0, tzinfo=dt.timezone(dt.timedelta(hours=1))),
     dt.datetime(2027, 2, 1, 12, 0, tzinfo=UTC)),
])
def test_parse_deadline_takes_datetimes_and_nothing(value, expected):
    assert parse_deadline(value) == expected


@pytest.mark.parametrize("value", [
    "2027-02-30", "2027-02-01T24:00", "2027-02-01T12:00+25:00", "2027-02-01+01:00", "tomorrow", "1e9",
    "2027-02-01T12:00\x1b[2J", "2027-02-01\n2028-01-01", 20270201, True, ["2027-02-01"], {"at": 1}, 1.5,
    "9999-12-31T23:59-02:00",
])
def test_a_bad_deadline_is_one_line_naming_its_source(value):
    with pytest.raises(UserError, match="competition.json deadline") as info:
        parse_deadline(value, "competition.json deadline")
    assert "\n" not in str(info.value) and "\x1b" not in str(info.value)


def test_a_start_date_alone_is_its_first_minute():
    assert parse_instant("2027-02-01", "--start") == dt.datetime(2027, 2, 1, tzinfo=UTC)


@pytest.mark.parametrize("deadline", ["2027-02-01", "2027-02-01T18:00", "2027-02-01T18:00+02:00"])
def test_server_exports_and_inbox_read_one_instant(tmp_path, deadline):
    """The server in Paris time, the hosting exports and the inbox agree to the minute."""
    folder = make_competition(tmp_path)
    meta = json.loads((folder / "competition.json").read_text())
    (folder / "competition.json").write_text(json.dumps(dict(meta, deadline=deadline)))
    comp = load_competition(folder)
    expected = competition_deadline(comp.metadata)
    app = create_app(comp, leaderboard=tmp_path / "lb", timezone_name="Europe/Paris", export_interval=0)
    try:
        assert app.state.kit.deadline == expected
    finally:
        app.state.kit.db.close()
    assert hosted_deadline(comp) == expected.replace(tzinfo=None)
