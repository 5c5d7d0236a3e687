"""kit.hosting's shared helpers: dates with offsets, the deadline both exports use, the licence warning."""
import datetime as dt
import json
from collections import Counter

import pytest

from builders import make_competition, rehash
from kit.competition.folder import load_competition
from kit.data.licences import drop_licences
from kit.errors import UserError
from kit.hosting.files import competition_deadline, parse_end, parse_when
from kit.hosting.pages import hosted_licences, licence_warning


@pytest.mark.parametrize("text, expected", [
    ("2026-01-05", dt.datetime(2026, 1, 5)),
    ("2026-01-05Z", dt.datetime(2026, 1, 5)),
    ("2026-01-05T10:30", dt.datetime(2026, 1, 5, 10, 30)),
    ("2026-01-05T10:30Z", dt.datetime(2026, 1, 5, 10, 30)),
    ("2026-01-05t10:30z", dt.datetime(2026, 1, 5, 10, 30)),
    ("2026-01-05 10:30:15+00:00", dt.datetime(2026, 1, 5, 10, 30, 15)),
    ("2026-01-05T10:30+02:00", dt.datetime(2026, 1, 5, 8, 30)),
    ("2026-01-05T10:30+0200", dt.datetime(2026, 1, 5, 8, 30)),
    ("2026-01-05T22:30-05:30", dt.datetime(2026, 1, 6, 4, 0)),  # the next day in UTC
    ("2026-01-01T00:30+01:00", dt.datetime(2025, 12, 31, 23, 30)),  # the previous year
    ("2027-01-31T23:59:00.000Z", dt.datetime(2027, 1, 31, 23, 59)),  # as Kaggle writes it
])
def test_parse_when_converts_offsets_to_utc(text, expected):
    assert parse_when(text, "--start") == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-13-01",
        "2026-01-05T25:00",
        "2026-01-05T10:30+24:00",
        "2026-01-05T10:30+02:60",
        "2026-01-05+02:00",
        "2026-01-05T10:30+02:00:00",
        "9999-12-31T23:59-02:00",
        "2027-01-31T23:59:00.000+00:00Z",
        "0001-01-01T00:30+01:00",
        "tomorrow",
        "",
        "2026-01-05T10:30\x1b[2J",
        20260105,
        None,
        True,
        ["2026-01-05"],
    ],
)
def test_bad_dates_are_one_line(text):
    with pytest.raises(UserError, match="competition.json deadline") as info:
        parse_end(text, "competition.json deadline")
    assert "\n" not in str(info.value) and "\x1b" not in str(info.value)


@pytest.mark.parametrize(
    "deadline, expected",
    [
        (None, None),
        ("", None),
        ("2027-01-31", dt.datetime(2027, 1, 31, 23, 59)),
        ("2027-02-01T01:59:00+02:00", dt.datetime(2027, 1, 31, 23, 59)),
    ],
)
def test_competition_deadline(tmp_path, deadline, expected):
    folder = make_competition(tmp_path)
    meta = json.loads((folder / "competition.json").read_text())
    (folder / "competition.json").write_text(json.dumps(dict(meta, deadline=deadline)))
    assert competition_deadline(load_competition(folder)) == expected


def test_codabench_takes_an_offset_deadline_from_the_shared_helper(tmp_path):
    import zipfile

    import yaml

    from kit.hosting.codabench import export_codabench

    folder = make_competition(tmp_path / "data")
    meta = json.loads((folder / "competition.json").read_text())
    (folder / "competition.json").write_text(json.dumps(dict(meta, deadline="2026-06-30T14:00+02:00")))
    out = export_codabench(folder, tmp_path / "b.zip", start="2026-06-01")
    with zipfile.ZipFile(out) as bundle:
        spec = yaml.safe_load(bundle.read("competition.yaml"))
    assert spec["phases"][0]["end"] == "2026-06-30 12:00"


def test_licence_warning_counts_each_restriction_and_names_the_licences():
    warning = licence_warning(Counter({"CC BY": 90, "CC BY-NC-ND": 3, "CC-BY-NC-ND 4.0": 1, "CC BY-NC": 5}))
    assert warning.startswith("warning:") and "\n" not in warning
    assert "4 no derivatives" in warning and "9 non-commercial use only" in warning
    # Spellings and versions of one licence are counted together, as the option that drops them.
    assert "(CC-BY-NC: 5, CC-BY-NC-ND: 4)" in warning and "CC-BY:" not in warning
    assert warning.endswith("--exclude-licence CC-BY-NC --exclude-licence CC-BY-NC-ND")


def test_licence_warning_names_every_restricted_licence_with_the_option_that_drops_it():
    # As in MassBank: the hint named only the no-derivatives licence, the largest ones stayed in.
    counts = Counter(
        {
            "CC BY": 60_000,
            "CC BY-NC-SA": 15_000,
            "CC BY-NC-SA 4.0": 130,
            "CC BY-NC": 4_269,
            "CC BY-NC-ND": 132,
            "Copyright (c) 2020 all rights reserved": 7,
            "CC BY-SA": 9,
            "Attribution-NoDerivatives 4.0 International": 3,
        }
    )
    warning = licence_warning(counts)
    assert "(CC-BY-NC-SA: 15,130, CC-BY-NC: 4,269, CC-BY-NC-ND: 132, ALL-RIGHTS-RESERVED: 7, CC-BY-ND: 3)" in warning
    assert "135 no derivatives, 19,531 non-commercial use only, 7 no redistribution" in warning
    options = warning.split("kit prepare ... ")[1].split()[1::2]
    assert options == ["CC-BY-NC-SA", "CC-BY-NC", "CC-BY-NC-ND", "ALL-RIGHTS-RESERVED", "CC-BY-ND"]
    # Each option drops exactly the restricted records, in every spelling, and no open one.
    kept, dropped = drop_licences([{"license": name} for name, n in counts.items() for _ in range(min(n, 3))], options)
    assert sorted({s["license"] for s in kept}) == ["CC BY", "CC BY-SA"]


def test_licence_warning_escapes_hostile_licence_names():
    warning = licence_warning(Counter({"CC BY-NC\x1b[2J\nfake": 2}))
    assert "\x1b" not in warning and "\n" not in warning


def test_hosted_licences_prefer_the_recorded_counts_over_the_files(tmp_path):
    folder = make_competition(tmp_path)
    (folder / "train.mgf").write_text("BEGIN IONS\nLICENSE=CC BY\nEND IONS\n")
    comp = load_competition(rehash(folder))
    from kit.hosting.files import public_files

    assert hosted_licences(comp, public_files(comp)) == Counter({"CC BY": 1})
    meta = json.loads((folder / "competition.json").read_text())
    for recorded, expected in [
        ({"CC BY": 4, "unknown": 2}, Counter({"CC BY": 4})),
        ({"CC BY": "4"}, Counter({"CC BY": 1})),
        ("junk", Counter({"CC BY": 1})),
    ]:
        (folder / "competition.json").write_text(json.dumps(dict(meta, library={"licenses": recorded})))
        comp = load_competition(folder)
        assert hosted_licences(comp, public_files(comp)) == expected


@pytest.mark.parametrize(
    "files, words",
    [
        ({"metadata": "x"}, "found 0 other file(s)"),  # the compute worker's own file is not the participant's
        ({"metadata": "x", "notes.txt": "y"}, "found 1 other file(s)"),
        ({"sub/metadata": "x"}, "found 1 other file(s)"),  # a participant's file of that name still counts
    ],
)
def test_the_no_csv_message_counts_only_the_participants_files(tmp_path, files, words):
    from kit.hosting.codabench_scorer import find_submission

    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    with pytest.raises(UserError, match=r"no CSV file") as info:
        find_submission(tmp_path)
    assert words in str(info.value)


@pytest.mark.parametrize(
    "line, licence",
    [
        ("LICENSE=" + " " * 200_000 + "x", "x"),
        ("LICENSE=CC BY" + " \t" * 100_000, "CC BY"),
        ("licence=CC BY-NC\r", "CC BY-NC"),
        ("LICENSE=" + " " * 200_000, "(empty)"),
    ],
)
def test_licence_lines_are_read_in_linear_time(tmp_path, line, licence):
    import time

    from kit.hosting.pages import licence_counts

    path = tmp_path / "t.mgf"
    path.write_text(f"BEGIN IONS\n{line}\nEND IONS\n")
    started = time.perf_counter()
    assert licence_counts([("t.mgf", path)]) == Counter({licence: 1})
    assert time.perf_counter() - started < 2
