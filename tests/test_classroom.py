"""kit.classroom and ``kit leaderboard --inbox``: score each file once, limits, safe names."""
import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone

import pytest
from builders import make_competition, perfect_submission

from kit.classroom import daily_limit, participant_from_filename, process_inbox
from kit.errors import UserError
from kit.leaderboard import build_leaderboard, read_log

DAY1 = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc).timestamp()
HOUR = 3600


@pytest.fixture
def comp_dir(tmp_path):
    return make_competition(tmp_path / "data", n_pairs=50, seed=2, max_daily_submissions=2)


def drop(comp_dir, inbox, name, noise=0.1, seed=0, when=DAY1):
    """Put a valid submission into the inbox with a given submission (modification) time."""
    path = perfect_submission(comp_dir, inbox / name, noise=noise, seed=seed)
    os.utime(path, (when, when))
    return path


def kit_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "kit", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_participant_from_filename():
    assert participant_from_filename("alice__v2__final.csv") == "alice"
    assert participant_from_filename("Bob Smith__1.CSV") == "Bob_Smith"
    assert participant_from_filename("..__x.csv") == "anonymous"
    assert participant_from_filename("__x.csv") is None
    assert participant_from_filename("alice.csv") is None
    assert participant_from_filename("alice__x.txt") is None


def test_each_file_is_scored_once_by_content(tmp_path, comp_dir):
    inbox = tmp_path / "inbox"
    drop(comp_dir, inbox, "alice__a.csv", 0.1, 1)
    drop(comp_dir, inbox, "bob__1.csv", 0.2, 2, DAY1 + HOUR)
    shutil.copy(inbox / "alice__a.csv", inbox / "alice__copy.csv")  # same content, same person
    lb = tmp_path / "lb"

    first = process_inbox(comp_dir, inbox, leaderboard=lb)
    assert sorted(f for f, _, _ in first.scored) == ["alice__a.csv", "bob__1.csv"]
    assert first.already_scored == ["alice__copy.csv"]

    drop(comp_dir, inbox, "bob__2.csv", 0.05, 3, DAY1 + 2 * HOUR)
    second = process_inbox(comp_dir, inbox, leaderboard=lb)
    assert [f for f, _, _ in second.scored] == ["bob__2.csv"]
    assert sorted(second.already_scored) == ["alice__a.csv", "alice__copy.csv", "bob__1.csv"]
    log = read_log(lb / "practice.csv")
    assert len(log) == 3
    assert log["time"].iloc[0] == datetime.fromtimestamp(DAY1, tz=timezone.utc)  # submission time = file time


def test_rejected_files_are_listed_with_reasons(tmp_path, comp_dir):
    inbox = tmp_path / "inbox"
    good = drop(comp_dir, inbox, "alice__a.csv")
    (inbox / "carol__dup.csv").write_text(good.read_text() + good.read_text().splitlines()[1] + "\n")
    (inbox / "notes.txt").write_text("hello")
    (inbox / "dave.csv").write_text(good.read_text())
    (inbox / "sub").mkdir()
    (inbox / ".DS_Store").write_text("")
    report = process_inbox(comp_dir, inbox, leaderboard=tmp_path / "lb")
    reasons = dict(report.rejected)
    assert set(reasons) == {"carol__dup.csv", "notes.txt", "dave.csv", "sub"}
    assert reasons["carol__dup.csv"].startswith("duplicate ids")
    assert "<participant>__<anything>.csv" in reasons["notes.txt"] and "<participant>" in reasons["dave.csv"]
    assert "folder" in reasons["sub"]
    assert [f for f, _, _ in report.scored] == ["alice__a.csv"]


def test_daily_limit_counts_valid_submissions_per_utc_day(tmp_path, comp_dir):
    inbox = tmp_path / "inbox"
    for k in range(3):
        drop(comp_dir, inbox, f"alice__{k}.csv", 0.1 + k / 100, k, DAY1 + k * HOUR)
    (inbox / "alice__bad.csv").write_text("id,similarity\n")  # invalid: does not use up the limit
    os.utime(inbox / "alice__bad.csv", (DAY1 - HOUR, DAY1 - HOUR))
    drop(comp_dir, inbox, "alice__next_day.csv", 0.3, 9, DAY1 + 24 * HOUR)
    drop(comp_dir, inbox, "bob__0.csv", 0.3, 10, DAY1 + 5 * HOUR)
    report = process_inbox(comp_dir, inbox, leaderboard=tmp_path / "lb")
    scored = [f for f, _, _ in report.scored]
    assert scored == ["alice__0.csv", "alice__1.csv", "bob__0.csv", "alice__next_day.csv"]
    reasons = dict(report.rejected)
    assert reasons["alice__2.csv"].startswith("daily limit") and "2025-03-03" in reasons["alice__2.csv"]
    assert reasons["alice__bad.csv"].startswith("no rows")
    again = process_inbox(comp_dir, inbox, leaderboard=tmp_path / "lb")  # still over the limit
    assert again.scored == [] and "alice__2.csv" in dict(again.rejected)


def test_daily_limit_setting():
    assert daily_limit({}) == 5
    assert daily_limit({"max_daily_submissions": 3}) == 3
    assert daily_limit({"max_daily_submissions": None}) is None
    with pytest.raises(UserError):
        daily_limit({"max_daily_submissions": "many"})


def test_links_are_refused_and_never_read(tmp_path, comp_dir):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    secret = tmp_path / "secret.csv"
    secret.write_text("id,similarity\nTOPSECRET,1\n")
    (inbox / "mallory__s.csv").symlink_to(secret)
    (inbox / "mallory__d.csv").symlink_to(tmp_path, target_is_directory=True)
    report = process_inbox(comp_dir, inbox, leaderboard=tmp_path / "lb")
    reasons = dict(report.rejected)
    assert "link" in reasons["mallory__s.csv"] and "link" in reasons["mallory__d.csv"]
    standings = build_leaderboard(comp_dir, leaderboard=tmp_path / "lb", rejected=report.rejected)
    for page in (standings.text, standings.markdown_path.read_text(), standings.html_path.read_text()):
        assert "TOPSECRET" not in page


def test_names_cannot_escape_or_inject(tmp_path, comp_dir):
    inbox = tmp_path / "inbox"
    evil = "<img src=x onerror=alert(1)><script>alert(2)<\\script>"
    drop(comp_dir, inbox, f"{evil}__a.csv", 0.1)
    drop(comp_dir, inbox, " ..__b.csv", 0.2, 1)
    bad = inbox / f"{evil}__bad.csv"
    bad.write_text("id,similarity\n<script>alert(3)</script>,1\n")
    lb = tmp_path / "lb"
    report = process_inbox(comp_dir, inbox, leaderboard=lb)
    assert {p for _, p, _ in report.scored} == {"img_src_x_onerror_alert_1_script_alert_2", "anonymous"}
    assert sorted(p.name for p in lb.iterdir() if not p.name.endswith(".lock")) == ["practice.csv"]
    standings = build_leaderboard(comp_dir, leaderboard=lb, rejected=report.rejected)
    for page in (standings.markdown_path.read_text(), standings.html_path.read_text()):
        assert "<script" not in page and "<img src=x" not in page
    assert "&lt;script&gt;" in standings.html_path.read_text()  # the rejected file is listed, escaped
    assert sorted(p.name for p in lb.iterdir() if not p.name.endswith(".lock")) == [
        "practice.csv", "practice.html", "practice.md"]


def test_missing_inbox_is_a_user_error(tmp_path, comp_dir):
    with pytest.raises(UserError, match="inbox"):
        process_inbox(comp_dir, tmp_path / "nope", leaderboard=tmp_path / "lb")


def test_kit_leaderboard_inbox_and_final_ranking(tmp_path, comp_dir):
    inbox = tmp_path / "inbox"
    drop(comp_dir, inbox, "alice__1.csv", 0.1, 1)
    drop(comp_dir, inbox, "bob__1.csv", 0.05, 2, DAY1 + HOUR)
    (inbox / "carol__1.csv").write_bytes(b"\xef\xbb\xbfid,similarity\n0,0.5\n")
    done = kit_cli("leaderboard", "--competition", comp_dir, "--inbox", inbox, "--no-pages", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "2 new file(s) scored" in done.stdout and "1 rejected" in done.stdout
    assert "carol__1.csv: starts with a UTF-8 byte-order mark" in done.stdout
    assert done.stdout.index("bob") < done.stdout.index("alice")
    final = kit_cli("leaderboard", "--competition", comp_dir, "--inbox", inbox, "--private", "--no-pages", cwd=tmp_path)
    assert final.returncode == 0, final.stderr
    assert "0 new file(s) scored, 2 already scored" in final.stdout
    assert "final standings on the Private rows" in final.stdout
    assert len(read_log(tmp_path / "leaderboard" / "practice.csv")) == 2
