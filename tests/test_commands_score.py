"""``kit score``: the competition from the manifest, and a file scored twice is logged once."""
import hashlib
import json
import os
import time

import pytest

from builders import make_competition, perfect_submission
from kit.board.logfile import read_log
from kit.cli import main
from kit.commands.score import choose_competition


@pytest.fixture
def data(tmp_path, monkeypatch):
    """``data/`` with two competitions whose test ids differ, and the working folder set to its parent."""
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "data"
    make_competition(root, n_pairs=40, seed=1, name="practice")
    make_competition(root, n_pairs=30, seed=2, name="other", ids=range(1000, 1030))
    return root


def _submission(data, name, manifest=None, participant=None):
    path = perfect_submission(data / name, data.parent / "subs" / f"{name}.csv", noise=0.1)
    if manifest is not False:
        info = {"competition": name, "model": {"name": "gbm"}, "participant": participant,
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
        info.update(manifest or {})
        path.with_suffix(".json").write_text(json.dumps(info))
    return path


def _log(tmp_path, name):
    return read_log(tmp_path / "leaderboard" / f"{name}.csv")


def test_competition_comes_from_the_manifest(data, capsys):
    path = _submission(data, "other")
    assert main(["score", str(path), "--participant", "ann"]) == 0
    captured = capsys.readouterr()
    assert "on other" in captured.out and "competition 'other' from other.json" in captured.err
    assert len(_log(data.parent, "other")) == 1 and not (data.parent / "leaderboard" / "practice.csv").exists()


def test_given_competition_wins_and_a_disagreement_is_said(data, capsys):
    path = _submission(data, "practice", manifest={"competition": "other"})
    assert main(["score", str(path), "--competition", "practice", "--no-log"]) == 0
    err = capsys.readouterr().err
    assert "says competition 'other'" in err and "scoring against 'practice'" in err


def test_agreeing_competition_says_nothing(data, capsys):
    path = _submission(data, "practice")
    assert main(["score", str(path), "--competition", str(data / "practice"), "--no-log"]) == 0
    assert "competition" not in capsys.readouterr().err


@pytest.mark.parametrize("named", [None, 3, ["practice"], "../practice", "/etc", "", ".hidden", "a b", "other\n", "o" * 65])
def test_a_manifest_without_a_usable_name_falls_back_to_the_default(data, named, capsys):
    path = _submission(data, "practice", manifest={"competition": named})
    comp, note = choose_competition(path, data=data)
    assert comp.name == "practice" and note is None


@pytest.mark.parametrize("manifest_text", ["", "{", "[]", "null", '{"competition": "other"}', "\xff\xfe"])
def test_unreadable_or_modelless_manifests_are_ignored(data, manifest_text):
    path = _submission(data, "practice", manifest=False)
    path.with_suffix(".json").write_bytes(manifest_text.encode("latin-1"))
    comp, note = choose_competition(path, data=data)
    assert comp.name == "practice" and note is None


def test_a_manifest_naming_a_missing_competition_is_one_line(data, capsys):
    path = _submission(data, "practice", manifest={"competition": "gone"})
    assert main(["score", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "practice.json names competition 'gone'" in err and "--competition" in err


def test_without_manifest_the_default_competition_is_used(data, capsys):
    path = _submission(data, "practice", manifest=False)
    assert main(["score", str(path), "--no-log"]) == 0
    assert "on practice" in capsys.readouterr().out


def test_the_same_file_is_logged_once_per_participant(data, capsys):
    path = _submission(data, "practice")
    assert main(["score", str(path), "--participant", "ann"]) == 0
    assert "Logged to" in capsys.readouterr().out
    assert main(["score", str(path), "--participant", "ann"]) == 0
    out = capsys.readouterr().out
    assert "Already scored for ann" in out and "not logged again" in out
    # The same name as the log spells it, and another participant is another submission.
    assert main(["score", str(path), "--participant", "a n n"]) == 0
    assert main(["score", str(path), "--participant", "bob", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["logged"] is True
    assert main(["score", str(path), "--participant", "bob", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["logged"] is False
    log = _log(data.parent, "practice")
    assert sorted(log["participant"]) == ["a n n", "ann", "bob"]  # the name as written


def test_the_readme_walkthrough_scores_again_without_logging_twice(data, capsys):
    # README: `kit score FILE --participant ann`, then `kit score FILE --participant ann --json`.
    path = _submission(data, "practice", participant="zoe")  # kit predict's manifest names someone else
    assert main(["score", str(path), "--participant", "ann"]) == 0
    capsys.readouterr()
    assert main(["score", str(path), "--participant", "ann", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["logged"] is False
    # Without --participant the manifest's participant is another person: a new submission.
    assert main(["score", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["logged"] is True
    assert sorted(_log(data.parent, "practice")["participant"]) == ["ann", "zoe"]


def test_a_changed_file_is_a_new_submission(data):
    path = _submission(data, "practice", manifest=False)
    assert main(["score", str(path), "--participant", "ann"]) == 0
    perfect_submission(data / "practice", path, noise=0.2)
    assert main(["score", str(path), "--participant", "ann"]) == 0
    assert len(_log(data.parent, "practice")) == 2


def test_the_manifest_participant_counts_for_the_duplicate_check(data, capsys):
    path = _submission(data, "practice", participant="carol")
    assert main(["score", str(path)]) == 0
    assert main(["score", str(path), "--participant", "carol"]) == 0
    assert "Already scored for carol" in capsys.readouterr().out
    assert list(_log(data.parent, "practice")["participant"]) == ["carol"]


def test_a_file_an_inbox_or_the_server_stored_is_the_same_submission(data, capsys):
    """One store: a file already stored for the participant by another command is not stored twice."""
    from kit.board.inbox import process_inbox

    path = _submission(data, "practice", manifest=False)
    inbox = data.parent / "inbox"
    inbox.mkdir()
    (inbox / "ann__1.csv").write_bytes(path.read_bytes())
    assert process_inbox(data / "practice", inbox, leaderboard=data.parent / "leaderboard").scored
    assert main(["score", str(path), "--participant", "ANN"]) == 0
    assert "Already scored for ann" in capsys.readouterr().out
    assert list(_log(data.parent, "practice")["file"]) == ["ann__1.csv"]


def test_json_and_report_show_five_decimals_unless_private(data, capsys):
    path = _submission(data, "practice", manifest=False)
    assert main(["score", str(path), "--json", "--no-log"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert main(["score", str(path), "--json", "--no-log", "--private"]) == 0
    full = json.loads(capsys.readouterr().out)
    assert shown["public"] == round(full["public"], 5) and shown["public"] != full["public"]
    numbers = [shown["public"], shown["mae"], shown["binned_rmse"], *shown["per_bin_rmse"].values()]
    assert all(v is None or v == round(v, 5) for v in numbers)
    assert main(["score", str(path), "--no-log"]) == 0
    report = capsys.readouterr().out
    import re

    assert not re.search(r"\d\.\d{6,}", report)


@pytest.mark.parametrize("content", [
    "id,similarity\n0,0.5" + " " * 140_000 + "\n0,0.5\n",            # a huge field and a repeated id
    'id,similarity\n0,"0.5' + " " * 140_000 + '"\n0,0.5\n',          # the same, quoted
    "id,similarity\n0,0.5\0\n",                                      # a NUL byte
    "id,similarity\n" + "\n" * 5 + '0,"\n',                          # an unterminated quote
])
def test_a_hostile_file_is_one_line_and_exit_2(data, capsys, content):
    path = data.parent / "evil.csv"
    path.write_text(content)
    assert main(["score", str(path), "--participant", "mallory"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "evil.csv" in err
    assert not (data.parent / "leaderboard" / "practice.csv").exists()


def test_an_unexpected_failure_of_the_reader_is_one_line(data, capsys, monkeypatch):
    import kit.scoring.scorer

    def broken(path, expected_ids=None):
        raise IndexError("list index out of range\nmore")

    monkeypatch.setattr(kit.scoring.scorer, "read_submission", broken)
    path = _submission(data, "practice", manifest=False)
    assert main(["score", str(path)]) == 2
    err = capsys.readouterr().err
    assert "cannot be read as a submission (IndexError: list index out of range)" in err and err.count("\n") == 1


# --- the manifest: who it may name, and a bad one never stops scoring ------------------


@pytest.mark.parametrize("manifest, logged_as", [
    ({}, "zoe"),                                   # kit predict's manifest of this very file
    ({"sha256": None}, "dan"),                     # no hash: it may have been copied beside any file
    ({"sha256": "0" * 64}, "dan"),                 # another file's manifest
    ({"participant": ""}, "dan"),
    ({"participant": ["zoe"]}, "dan"),
])
def test_the_manifest_names_the_participant_only_for_its_own_file(data, capsys, monkeypatch, manifest, logged_as):
    monkeypatch.setenv("USER", "dan")
    path = _submission(data, "practice", manifest=manifest, participant=manifest.get("participant", "zoe"))
    assert main(["score", str(path)]) == 0
    assert list(_log(data.parent, "practice")["participant"]) == [logged_as]
    err = capsys.readouterr().err
    assert ("participant 'zoe' from practice.json" in err) == (logged_as == "zoe")


def test_an_explicit_participant_always_wins_over_the_manifest(data, capsys):
    path = _submission(data, "practice", participant="zoe")
    assert main(["score", str(path), "--participant", "ann"]) == 0
    assert list(_log(data.parent, "practice")["participant"]) == ["ann"] and "zoe" not in capsys.readouterr().err


def _bad_manifest(target, kind):
    """Make ``target`` (a submission's .json) a hostile manifest of the given kind."""
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "link to /dev/zero":
        target.symlink_to("/dev/zero")
    elif kind == "link to a good manifest":
        good = target.with_name("good.json")
        good.write_text(json.dumps({"competition": "other", "model": {"name": "x"}, "participant": "zoe"}))
        target.symlink_to(good)
    elif kind == "hard link":
        good = target.with_name("good.json")
        good.write_text(json.dumps({"competition": "other", "model": {"name": "x"}}))
        os.link(good, target)
    elif kind == "device":
        target.symlink_to("/dev/null")
    elif kind == "folder":
        target.mkdir()
    else:
        target.write_bytes({
            "100,000 nested lists": b"[" * 100_000,
            "nested objects": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
            "a deep model": b'{"model": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            "too large": b'{"model": {}, "pad": "' + b" " * (1 << 20) + b'"}',
            "not UTF-8": b'{"model": {"name": "\xff"}}',
            "not JSON": b"{model: gbm",
            "a list": b"[1, 2]",
            "no model": b'{"competition": "other"}',
            "empty": b"",
            "NaN and huge numbers": b'{"model": {"name": NaN}, "x": 1' + b"0" * 5000 + b"}",
        }[kind])


@pytest.mark.parametrize("kind", [
    "fifo", "link to /dev/zero", "link to a good manifest", "hard link", "device", "folder",
    "100,000 nested lists", "nested objects", "a deep model", "too large", "not UTF-8", "not JSON", "a list",
    "no model", "empty", "NaN and huge numbers",
])
def test_a_bad_manifest_is_ignored_with_one_warning_and_the_file_is_scored(data, capsys, monkeypatch, kind):
    monkeypatch.setenv("USER", "dan")
    path = _submission(data, "practice", manifest=False)
    _bad_manifest(path.with_suffix(".json"), kind)
    started = time.perf_counter()
    assert main(["score", str(path), "--json"]) == 0
    assert time.perf_counter() - started < 30
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert result["competition"] == "practice" and result["logged"]
    assert list(_log(data.parent, "practice")["participant"]) == ["dan"]
    if kind != "NaN and huge numbers":  # valid JSON to Python: read, it names nothing usable
        lines = [line for line in err.splitlines() if "practice.json ignored" in line]
        assert len(lines) == 1 and "scored without it" in lines[0] and lines[0].isprintable(), err
        assert lines[0] in [f"kit score: warning: {w}" for w in result["warnings"]]
    assert "Traceback" not in err
