"""``kit participants``: add, list and revoke, in process through ``kit.cli.main``."""
import csv
import io
import os

import pytest

from builders import make_competition
from kit.board.store import Database
from kit.cli import main


@pytest.fixture
def comp(tmp_path):
    return make_competition(tmp_path / "data")


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def add(capsys, comp, *names):
    return run(capsys, "participants", "add", "--competition", str(comp), *names)


def test_add_prints_name_token_csv_once_and_stores_hashes(capsys, comp):
    code, out, err = add(capsys, comp, "Ada", "José Pérez", "李雷")
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["name", "token"]
    assert [r[0] for r in rows[1:]] == ["Ada", "José Pérez", "李雷"]
    db = Database(comp / "private" / "classroom.sqlite")
    for name, token in rows[1:]:
        assert db.participant_for_token(token).name == name
    raw = (comp / "private" / "classroom.sqlite").read_bytes()
    assert not any(token.encode() in raw for _, token in rows[1:])
    # The teacher token goes to stderr the first time only, so stdout stays a clean CSV.
    assert "Teacher token" in err and "Teacher token" not in out
    assert os.stat(comp / "private" / "teacher_token").st_mode & 0o777 == 0o600
    _, _, err_again = add(capsys, comp, "Bob")
    assert "Teacher token" not in err_again


def test_add_from_a_file(capsys, comp, tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("\ufeff# class 3B\nAda\n\n  Bob  \n# comment\nCarol\r\n", encoding="utf-8")
    code, out, _ = run(capsys, "participants", "add", "--competition", str(comp), "--file", str(names), "Dan")
    assert code == 0
    assert [r[0] for r in list(csv.reader(io.StringIO(out)))[1:]] == ["Dan", "Ada", "Bob", "Carol"]


@pytest.mark.parametrize("names", [
    ["Ada", "ADA"], ["Bob", "ｂｏｂ"], ["ok", "bad\x1b[31m"], ["ok", "x" * 41], ["ok", "Bоb"], ["ok", "=cmd()"],
    ["ok", "../../etc"], ["ok", ""],
])
def test_a_refused_name_adds_nobody(capsys, comp, names):
    code, out, err = add(capsys, comp, *names)
    assert code == 2
    assert out == "" and err.count("\n") <= 2 and "Traceback" not in err
    assert "error:" in err
    assert Database(comp / "private" / "classroom.sqlite").participants() == []


def test_existing_participant_is_refused(capsys, comp):
    add(capsys, comp, "Ada")
    code, out, err = add(capsys, comp, "ada")
    assert code == 2 and "same person" in err and out == ""


@pytest.mark.parametrize("content", [b"\xff\xfe\x00A\x00d", b"x" * (2 << 20)])
def test_bad_names_file(capsys, comp, tmp_path, content):
    path = tmp_path / "names.txt"
    path.write_bytes(content)
    code, _, err = run(capsys, "participants", "add", "--competition", str(comp), "--file", str(path))
    assert code == 2 and "names.txt" in err


def test_no_names_or_missing_file(capsys, comp, tmp_path):
    assert add(capsys, comp)[0] == 2
    code, _, err = run(capsys, "participants", "add", "--competition", str(comp), "--file", str(tmp_path / "none.txt"))
    assert code == 2 and "cannot read" in err


def test_list_and_revoke(capsys, comp):
    _, out, _ = add(capsys, comp, "Ada", "Bob")
    code, listing, _ = run(capsys, "participants", "list", "--competition", str(comp))
    assert code == 0 and "Ada" in listing and "active" in listing
    assert all(token not in listing for _, token in list(csv.reader(io.StringIO(out)))[1:])
    code, message, _ = run(capsys, "participants", "revoke", "--competition", str(comp), "BOB")
    assert code == 0 and "Revoked Bob" in message
    _, listing, _ = run(capsys, "participants", "list", "--competition", str(comp))
    assert "revoked" in listing
    code, _, err = run(capsys, "participants", "revoke", "--competition", str(comp), "nobody")
    assert code == 2 and "no participant" in err
    # Added again: a new token for the same person.
    code, out, _ = add(capsys, comp, "bob")
    assert code == 0 and list(csv.reader(io.StringIO(out)))[1][0] == "Bob"


def test_empty_list(capsys, comp):
    code, out, _ = run(capsys, "participants", "list", "--competition", str(comp))
    assert code == 0 and "No participants yet" in out


def test_unknown_competition(capsys, tmp_path):
    code, _, err = run(capsys, "participants", "list", "--competition", str(tmp_path / "nothing"))
    assert code == 2 and "not found" in err


# --- teams ------------------------------------------------------------------------------------


def test_add_with_a_team_and_list_shows_it(capsys, comp):
    code, out, err = run(capsys, "participants", "add", "--competition", str(comp), "Ada", "Bob", "--team", "Blue Whales")
    assert code == 0 and "In team Blue Whales" in err and len(out.splitlines()) == 3
    code, _, err = run(capsys, "participants", "add", "--competition", str(comp), "Cy", "--team", "BLUE WHALES")
    assert code == 0 and "In team Blue Whales" in err  # the first spelling is the team's name
    add(capsys, comp, "Dee")
    code, out, _ = run(capsys, "participants", "list", "--competition", str(comp))
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "team" in out.splitlines()[0]
    assert "Blue Whales" in lines["Ada"] and "Blue Whales" in lines["Cy"] and " - " in lines["Dee"]


@pytest.mark.parametrize("team, expected", [
    ("Ada", "has the name of participant 'Ada'"),
    ("ADA", "has the name of participant 'Ada'"),
    ("", "participant name"),
    ("a\nb", ""),
    ("x" * 500, ""),
])
def test_a_refused_team_adds_nobody(capsys, comp, team, expected):
    add(capsys, comp, "Ada")
    code, out, err = run(capsys, "participants", "add", "--competition", str(comp), "Eve", "--team", team)
    assert code == 2 and expected in err and "Traceback" not in err and out == ""
    db = Database(comp / "private" / "classroom.sqlite")
    assert [p["name"] for p in db.participants()] == ["Ada"]


def test_joining_only_before_the_first_scored_submission(capsys, comp):
    from datetime import datetime, timezone

    run(capsys, "participants", "add", "--competition", str(comp), "Ada", "--team", "Reds")
    db = Database(comp / "private" / "classroom.sqlite")
    db.record({"participant": "Ada", "time": datetime(2026, 3, 1, tzinfo=timezone.utc), "sha256": "ab",
               "public": 0.2}, "score")
    code, out, err = run(capsys, "participants", "add", "--competition", str(comp), "Bob", "--team", "Reds")
    assert code == 2 and "already submitted" in err and out == ""
    assert [p["name"] for p in db.participants()] == ["Ada"]
    with pytest.raises(Exception, match="already submitted"):
        db.join_team(["Ada"], "Greens")
