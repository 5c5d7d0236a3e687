"""kit.board.inbox and ``kit leaderboard --inbox``: first-seen time, identity, limits, hostile files."""
import hashlib
import json
import os
import re
import shutil
from datetime import datetime, timedelta, timezone

import pytest

import kit.board.inbox as classroom
from builders import make_competition, perfect_submission
from conftest import kit_cli
from kit.board.finals import FINAL_LIST_BYTES, FINAL_RULE
from kit.board.inbox import (
    INTERVAL,
    FirstSeen,
    daily_limit,
    participant_from_filename,
    process_inbox,
    seen_path,
    watch_inbox,
)
from kit.board.leaderboard import build_leaderboard
from kit.board.logfile import LOG_COLUMNS, read_log
from kit.board.store import Database
from kit.cli import main
from kit.constraints import parse_param
from kit.errors import UserError
from kit.scoring.reader import max_bytes_for

T1 = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
# Modification times a student can set with `touch -d`, or a broken clock can leave.
HOSTILE_MTIMES = [-62135596800, -1, 0, 253402300799, 2**40, 1e-9]


@pytest.fixture
def comp_dir(tmp_path):
    return make_competition(tmp_path / "data", n_pairs=50, seed=2, max_daily_submissions=2)


@pytest.fixture
def inbox(tmp_path):
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


def drop(comp_dir, inbox, name, noise=0.1, seed=0, mtime=None):
    """Put a valid submission into the inbox; ``mtime`` backdates or postdates it."""
    path = perfect_submission(comp_dir, inbox / name, noise=noise, seed=seed)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def run(comp_dir, inbox, tmp_path, now=T1):
    return process_inbox(comp_dir, inbox, leaderboard=tmp_path / "lb", now=now)


def log_of(tmp_path):
    return read_log(tmp_path / "lb" / "practice.csv")


def seen_records(comp_dir):
    """The store's first-seen records, oldest first."""
    db = Database(comp_dir / "private" / "classroom.sqlite")
    try:
        return db.inbox_seen()
    finally:
        db.close()


# --- names ---------------------------------------------------------------------------


@pytest.mark.parametrize("name, participant", [
    ("alice__v2__final.csv", "alice"),
    ("Bob Smith__1.CSV", "Bob Smith"),
    ("ＢＯＢ__1.csv", "BOB"),
    ("ﬁona__1.csv", "fiona"),
    ("José__1.csv", "José"),
    ("alice.csv", None),
    ("alice__x.txt", None),
    ("notes.txt", None),
    (".csv", None),
])
def test_participant_from_filename(name, participant):
    assert participant_from_filename(name) == participant


@pytest.mark.parametrize("name, reason", [
    ("__x.csv", "empty"),
    ("____.csv", "empty"),
    ("__.csv", "empty"),
    (" __x.csv", "empty"),
    ("..__x.csv", "start and end"),
    ("\u2024\u2024__x.csv", "start and end"),        # NFKC makes it '..'
    ("\uff0e\uff0e__x.csv", "start and end"),
    ("-rf__x.csv", "start and end"),
    ("a\nb__x.csv", "U+000A"),
    ("\x1b[2Jbob__x.csv", "U+001B"),
    ("bo\u200bb__x.csv", "ZERO WIDTH SPACE"),
    ("\u202ebob__x.csv", "RIGHT-TO-LEFT OVERRIDE"),
    ("B\u043eb__x.csv", "mixes Latin and Cyrillic"),
    ("x" * 41 + "__x.csv", "at most 40"),
    ("bob😀__x.csv", "GRINNING FACE"),
    ("bob<b>__x.csv", "'<'"),
])
def test_participant_from_filename_refuses(name, reason):
    with pytest.raises(UserError, match=re.escape(reason)):
        participant_from_filename(name)


# --- first-seen time -----------------------------------------------------------------


def test_each_file_is_scored_once_by_content(tmp_path, comp_dir, inbox):
    drop(comp_dir, inbox, "alice__a.csv", 0.1, 1)
    drop(comp_dir, inbox, "bob__1.csv", 0.2, 2)
    shutil.copy(inbox / "alice__a.csv", inbox / "alice__copy.csv")  # same content, same person
    first = run(comp_dir, inbox, tmp_path)
    assert sorted(f for f, _, _ in first.scored) == ["alice__a.csv", "bob__1.csv"]
    assert first.already_scored == ["alice__copy.csv"]

    drop(comp_dir, inbox, "bob__2.csv", 0.05, 3)
    second = run(comp_dir, inbox, tmp_path, now=T1 + HOUR)
    assert [f for f, _, _ in second.scored] == ["bob__2.csv"]
    assert sorted(second.already_scored) == ["alice__a.csv", "alice__copy.csv", "bob__1.csv"]
    log = log_of(tmp_path)
    assert len(log) == 3
    assert dict(zip(log["file"], log["time"])) == {"alice__a.csv": T1, "bob__1.csv": T1, "bob__2.csv": T1 + HOUR}


@pytest.mark.parametrize("mtime", HOSTILE_MTIMES)
def test_modification_time_is_ignored(tmp_path, comp_dir, inbox, mtime):
    try:
        drop(comp_dir, inbox, "alice__a.csv", mtime=mtime)
    except (OSError, OverflowError, ValueError):
        pytest.skip(f"this file system cannot store mtime {mtime}")
    report = run(comp_dir, inbox, tmp_path)
    assert [f for f, _, _ in report.scored] == ["alice__a.csv"]
    assert report.first_seen == {"alice__a.csv": T1}
    assert log_of(tmp_path)["time"].tolist() == [T1]
    assert main(["leaderboard", "--competition", str(comp_dir), "--leaderboard", str(tmp_path / "lb")]) == 0


def test_backdating_does_not_get_around_the_daily_limit(tmp_path, comp_dir, inbox):
    # Three files "from three different days" by their mtimes, all first seen on one day.
    for k in range(3):
        drop(comp_dir, inbox, f"alice__{k}.csv", 0.1 + k / 100, k, mtime=(T1 - k * DAY).timestamp())
    report = run(comp_dir, inbox, tmp_path)
    assert len(report.scored) == 2
    reasons = dict(report.rejected)
    assert reasons["alice__2.csv"].startswith("daily limit") and "2025-03-03" in reasons["alice__2.csv"]
    # The next day the rejected file is still a submission of its first-seen day ...
    assert "alice__2.csv" in dict(run(comp_dir, inbox, tmp_path, now=T1 + DAY).rejected)
    # ... while a new file that day is scored.
    drop(comp_dir, inbox, "alice__3.csv", 0.3, 9)
    assert [f for f, _, _ in run(comp_dir, inbox, tmp_path, now=T1 + DAY).scored] == ["alice__3.csv"]


def test_daily_limit_counts_valid_submissions_per_utc_day(tmp_path, comp_dir, inbox):
    for k in range(2):
        drop(comp_dir, inbox, f"alice__{k}.csv", 0.1 + k / 100, k)
    (inbox / "alice__bad.csv").write_text("id,similarity\n")  # invalid: does not use up the limit
    drop(comp_dir, inbox, "bob__0.csv", 0.3, 10)
    report = run(comp_dir, inbox, tmp_path)
    assert sorted(f for f, _, _ in report.scored) == ["alice__0.csv", "alice__1.csv", "bob__0.csv"]
    assert dict(report.rejected)["alice__bad.csv"].startswith("no rows")
    drop(comp_dir, inbox, "alice__late.csv", 0.2, 11)
    late = run(comp_dir, inbox, tmp_path, now=T1 + 14 * HOUR)       # 23:00 UTC, same day
    assert "daily limit" in dict(late.rejected)["alice__late.csv"]
    drop(comp_dir, inbox, "alice__next.csv", 0.2, 12)
    assert [f for f, _, _ in run(comp_dir, inbox, tmp_path, now=T1 + 15 * HOUR).scored] == ["alice__next.csv"]


def test_first_seen_survives_replace_delete_and_rename(tmp_path, comp_dir, inbox):
    first = drop(comp_dir, inbox, "alice__a.csv", 0.1, 1)
    run(comp_dir, inbox, tmp_path)
    original = first.read_bytes()
    # Same name, new content: a new submission, seen now.
    drop(comp_dir, inbox, "alice__a.csv", 0.05, 2, mtime=(T1 - DAY).timestamp())
    report = run(comp_dir, inbox, tmp_path, now=T1 + HOUR)
    assert report.first_seen["alice__a.csv"] == T1 + HOUR and len(report.scored) == 1
    # Deleted and added again with the first content: still its first time, already scored.
    first.write_bytes(original)
    report = run(comp_dir, inbox, tmp_path, now=T1 + 2 * HOUR)
    assert report.first_seen["alice__a.csv"] == T1 and report.already_scored == ["alice__a.csv"]
    # Renamed: seen anew; the same person's same content is still one submission.
    first.rename(inbox / "alice__renamed.csv")
    report = run(comp_dir, inbox, tmp_path, now=T1 + 3 * HOUR)
    assert report.first_seen == {"alice__renamed.csv": T1 + 3 * HOUR}
    assert report.already_scored == ["alice__renamed.csv"]
    assert len(log_of(tmp_path)) == 2
    assert [r["file"] for r in seen_records(comp_dir)] == ["alice__a.csv", "alice__a.csv", "alice__renamed.csv"]
    assert not seen_path(tmp_path / "lb" / "practice.csv").exists()  # kept in the store, not beside the exports


def test_copying_a_classmates_file_loses_the_tie(tmp_path, comp_dir, inbox):
    drop(comp_dir, inbox, "alice__mine.csv", 0.1, 1)
    run(comp_dir, inbox, tmp_path)
    # Mallory copies it under her name and backdates it to long before.
    shutil.copy(inbox / "alice__mine.csv", inbox / "mallory__mine.csv")
    os.utime(inbox / "mallory__mine.csv", (0, 0))
    report = run(comp_dir, inbox, tmp_path, now=T1 + HOUR)
    assert [p for _, p, _ in report.scored] == ["mallory"]
    assert any("identical to a submission of alice" in note for note in report.notes)
    ranking = build_leaderboard(comp_dir, leaderboard=tmp_path / "lb", write_pages=False).ranking
    assert ranking["participant"].tolist() == ["alice", "mallory"]
    assert ranking["rank"].tolist() == [1, 2]


@pytest.mark.parametrize("victim, copier", [("zoe__real.csv", "adam__copy.csv"), ("adam__real.csv", "zoe__copy.csv"),
                                             ("bob__x.csv", "BOB2__x.csv")])
def test_identical_files_first_seen_together_name_no_winner(tmp_path, comp_dir, inbox, victim, copier):
    """Both arrive between two polls: the file names (which sorts first) must not decide who copied."""
    drop(comp_dir, inbox, victim, 0.1, 1)
    shutil.copy(inbox / victim, inbox / copier)
    os.utime(inbox / copier, (0, 0))  # a backdated copy changes nothing either
    report = run(comp_dir, inbox, tmp_path)
    people = sorted((classroom.participant_from_filename(f) for f in (victim, copier)), key=str.casefold)
    assert sorted(p for _, p, _ in report.scored) == sorted(people)
    assert report.first_seen[victim] == report.first_seen[copier] == T1
    notes = [n for n in report.notes if "identical" in n]
    assert len(notes) == 1, report.notes
    assert notes[0].startswith(f"identical files from {people[0]} and {people[1]} first seen together; "
                               "neither is ranked ahead by time")
    assert "seen earlier" not in notes[0]
    ranking = build_leaderboard(comp_dir, leaderboard=tmp_path / "lb", write_pages=False).ranking
    assert ranking["rank"].tolist() == [1, 1]
    assert ranking["time"].nunique() == 1
    # A third copy in a later poll is later than both.
    shutil.copy(inbox / victim, inbox / "carol__late.csv")
    later = run(comp_dir, inbox, tmp_path, now=T1 + HOUR)
    assert [p for _, p, _ in later.scored] == ["carol"]
    assert any(n.startswith("carol__late.csv (carol) is identical to a submission of") and n.endswith("seen earlier")
               for n in later.notes)


def _journal_line(name, size, sha256, when):
    return json.dumps({"first_seen": when, "file": name, "size": size, "sha256": sha256}) + "\n"


def test_an_old_journal_is_imported_once_and_damage_tolerant(tmp_path, comp_dir, inbox):
    """The upgrade: the first-seen journal of an earlier version is taken into an empty store once."""
    path = drop(comp_dir, inbox, "alice__a.csv")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    record = seen_path(tmp_path / "lb" / "practice.csv")
    record.parent.mkdir(parents=True)
    record.write_text(_journal_line("alice__a.csv", path.stat().st_size, digest, "2025-03-01T08:00:00Z")
                      + '{"first_seen": "NaN", "file": "x__w.csv", "size": 1, "sha256": "ef"}\n'
                      + '{"first_seen": "2025-01-01T00:00:00", "file": "x__v.csv", "size": 1, "sha256": "ef"}\n'
                      + '["not", "a", "record"]\n{"torn": ')
    seen = FirstSeen(record)
    assert seen.skipped == 4 and len(seen.rows()) == 1
    report = run(comp_dir, inbox, tmp_path)
    assert report.first_seen["alice__a.csv"] == datetime(2025, 3, 1, 8, tzinfo=timezone.utc)
    assert any("4 damaged line(s)" in note for note in report.notes)
    assert any("imported into the store" in note for note in report.notes)
    # Imported once: the journal is never read again.
    drop(comp_dir, inbox, "bob__b.csv", 0.2, 3)
    bob = inbox / "bob__b.csv"
    size, digest_b = bob.stat().st_size, hashlib.sha256(bob.read_bytes()).hexdigest()
    with open(record, "a") as handle:
        handle.write("\n" + _journal_line("bob__b.csv", size, digest_b, "2025-01-01T00:00:00Z"))
    report = run(comp_dir, inbox, tmp_path, now=T1 + HOUR)
    assert report.first_seen["bob__b.csv"] == T1 + HOUR
    assert not any("imported" in note for note in report.notes)


@pytest.mark.parametrize("forged_when", ["2026-11-01T00:00:00Z", "2000-01-01T00:00:00Z", "0001-01-01T00:00:00Z"])
@pytest.mark.parametrize("folder", ["lb", "other"])
def test_a_journal_written_later_backdates_nothing(tmp_path, comp_dir, inbox, forged_when, folder):
    """Anyone who can write the leaderboard folder (this one or a new one) cannot backdate a file."""
    run(comp_dir, inbox, tmp_path)  # the store exists and has used its own first-seen times
    path = drop(comp_dir, inbox, "mallory__a.csv")
    forged = seen_path(tmp_path / folder / "practice.csv")
    forged.parent.mkdir(parents=True, exist_ok=True)
    forged.write_text(_journal_line("mallory__a.csv", path.stat().st_size,
                                    hashlib.sha256(path.read_bytes()).hexdigest(), forged_when))
    report = process_inbox(comp_dir, inbox, leaderboard=tmp_path / folder, now=T1 + HOUR)
    assert report.first_seen["mallory__a.csv"] == T1 + HOUR


def test_a_new_leaderboard_folder_does_not_reset_first_seen_or_the_daily_limit(tmp_path, comp_dir, inbox):
    for k in range(2):
        drop(comp_dir, inbox, f"alice__{k}.csv", 0.1 + k / 100, k)
    assert len(run(comp_dir, inbox, tmp_path).scored) == 2
    drop(comp_dir, inbox, "alice__2.csv", 0.3, 7)
    for folder in ("lb2", "lb3"):
        report = process_inbox(comp_dir, inbox, leaderboard=tmp_path / folder, now=T1 + HOUR)
        assert report.scored == [] and "daily limit" in dict(report.rejected)["alice__2.csv"]
        assert report.first_seen["alice__0.csv"] == T1
        assert sorted(report.already_scored) == ["alice__0.csv", "alice__1.csv"]


# --- identity ------------------------------------------------------------------------


def test_case_and_look_alike_names_are_one_participant(tmp_path, comp_dir, inbox):
    drop(comp_dir, inbox, "Bob__1.csv", 0.1, 1)
    drop(comp_dir, inbox, "BOB__2.csv", 0.09, 2)
    drop(comp_dir, inbox, "ｂｏｂ__3.csv", 0.08, 3)          # fullwidth
    drop(comp_dir, inbox, "ВОВ__4.csv", 0.07, 4)           # all Cyrillic capitals
    drop(comp_dir, inbox, "B\u043eb__5.csv", 0.01, 5)     # mixed script: refused
    report = run(comp_dir, inbox, tmp_path)
    assert {p for _, p, _ in report.scored} == {"BOB"}      # shown as first seen (files in name order)
    assert len(report.scored) == 2                          # the daily limit counts them together
    reasons = dict(report.rejected)
    assert sum(r.startswith("daily limit: BOB") for r in reasons.values()) == 2
    assert "mixes Latin and Cyrillic" in reasons["B\u043eb__5.csv"]
    ranking = build_leaderboard(comp_dir, leaderboard=tmp_path / "lb", write_pages=False).ranking
    assert ranking["participant"].tolist() == ["BOB"] and ranking["entries"].tolist() == [2]


def test_long_names_are_refused_not_cut(tmp_path, comp_dir, inbox):
    drop(comp_dir, inbox, "a" * 40 + "__1.csv", 0.1, 1)
    drop(comp_dir, inbox, "a" * 40 + "x__1.csv", 0.1, 2)
    drop(comp_dir, inbox, "a" * 40 + "y__1.csv", 0.1, 3)
    report = run(comp_dir, inbox, tmp_path)
    assert [p for _, p, _ in report.scored] == ["a" * 40]
    reasons = dict(report.rejected)
    for suffix in "xy":
        assert "at most 40" in reasons["a" * 40 + suffix + "__1.csv"]


@pytest.mark.parametrize("name", [
    "\n__x.csv", "a\rb__x.csv", "\x1b[31mred__x.csv", "__.csv", "____.csv", "\u2024\u2024__x.csv",
    "a\u200db__x.csv", "\u202egnp.exe__x.csv", "\x7f__x.csv", "x" * 200 + "__x.csv",
])
def test_hostile_file_names_are_listed_not_scored(tmp_path, comp_dir, inbox, name):
    drop(comp_dir, inbox, name)
    report = run(comp_dir, inbox, tmp_path)
    assert report.scored == [] and [n for n, _ in report.rejected] == [name]
    assert dict(report.rejected)[name].startswith("file name:")
    assert not seen_path(tmp_path / "lb" / "practice.csv").exists()   # never read, never hashed


def test_undecodable_file_name(tmp_path, comp_dir, inbox):
    raw = os.fsencode(inbox) + b"/\xff\xfe__x.csv"
    try:
        fd = os.open(raw, os.O_WRONLY | os.O_CREAT, 0o644)
    except OSError:
        pytest.skip("this file system refuses names that are not UTF-8")
    os.close(fd)
    report = run(comp_dir, inbox, tmp_path)
    assert report.scored == [] and len(report.rejected) == 1
    assert main(["leaderboard", "--competition", str(comp_dir), "--inbox", str(inbox),
                 "--leaderboard", str(tmp_path / "lb")]) == 0


# --- what is read --------------------------------------------------------------------


def test_sidecar_json_is_never_trusted(tmp_path, comp_dir, inbox):
    drop(comp_dir, inbox, "alice__a.csv", 0.3, 1)
    from kit.fileio import sha256_file

    sidecar = {"model": {"name": "PERFECT-MODEL"}, "validation_score": 0.0, "participant": "teacher",
               "sha256": sha256_file(inbox / "alice__a.csv")}
    (inbox / "alice__a.json").write_text(json.dumps(sidecar))
    report = run(comp_dir, inbox, tmp_path)
    assert [p for _, p, _ in report.scored] == ["alice"]
    assert "not read in classroom mode" in dict(report.rejected)["alice__a.json"]
    log = log_of(tmp_path)
    assert log["model"].tolist() == [""] and log["validation"].isna().all()
    assert log["participant"].tolist() == ["alice"]


def test_pipes_and_a_json_pipe_never_block(tmp_path, comp_dir, inbox):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes on this system")
    drop(comp_dir, inbox, "alice__a.csv")
    os.mkfifo(inbox / "alice__a.json")
    os.mkfifo(inbox / "bob__b.csv")
    report = run(comp_dir, inbox, tmp_path)   # would hang if either pipe were opened for reading
    reasons = dict(report.rejected)
    assert "not a regular file" in reasons["bob__b.csv"] and "alice__a.json" in reasons
    assert [f for f, _, _ in report.scored] == ["alice__a.csv"]


def test_size_is_checked_before_hashing(tmp_path, comp_dir, inbox, monkeypatch):
    cap = max_bytes_for(50)
    big = inbox / "alice__big.csv"
    with open(big, "wb") as handle:   # sparse: no disk space used
        handle.truncate(cap + 1)
    opened = []
    real = classroom._read_capped
    monkeypatch.setattr(classroom, "_read_capped", lambda path, *a: opened.append(path) or real(path, *a))
    report = run(comp_dir, inbox, tmp_path)
    assert opened == []
    assert f"at most {cap:,} bytes" in dict(report.rejected)["alice__big.csv"]


def test_file_growing_past_the_cap_after_listing(tmp_path, comp_dir, inbox, monkeypatch):
    path = drop(comp_dir, inbox, "alice__a.csv")
    cap = max_bytes_for(50)
    real = classroom._read_capped

    def grow(target, *args):
        with open(target, "ab") as handle:   # grows past the cap after the size was checked
            handle.truncate(cap + 10)
        return real(target, *args)

    monkeypatch.setattr(classroom, "_read_capped", grow)
    report = run(comp_dir, inbox, tmp_path)
    assert f"is more than {cap:,} bytes" in dict(report.rejected)["alice__a.csv"]
    assert path.stat().st_size == cap + 10


def test_a_file_changed_while_it_is_read_waits_for_the_next_poll(tmp_path, comp_dir, inbox, monkeypatch):
    path = drop(comp_dir, inbox, "alice__a.csv", 0.1, 1)
    real = classroom._snapshot

    def swap(entry, *args):
        perfect_submission(comp_dir, path, noise=0.0, seed=5)   # a perfect file swapped in
        return real(entry, *args)

    monkeypatch.setattr(classroom, "_snapshot", swap)
    report = run(comp_dir, inbox, tmp_path)
    assert report.scored == [] and any("changed while it was read" in n for n in report.notes)
    monkeypatch.setattr(classroom, "_snapshot", real)
    report = run(comp_dir, inbox, tmp_path, now=T1 + HOUR)
    assert report.scored[0][2] == 0.0 and report.first_seen["alice__a.csv"] == T1 + HOUR


def test_rejected_files_are_listed_with_reasons(tmp_path, comp_dir, inbox):
    good = drop(comp_dir, inbox, "alice__a.csv")
    (inbox / "carol__dup.csv").write_text(good.read_text() + good.read_text().splitlines()[1] + "\n")
    (inbox / "notes.txt").write_text("hello")
    (inbox / "dave.csv").write_text(good.read_text())
    (inbox / "sub").mkdir()
    (inbox / ".DS_Store").write_text("")
    report = run(comp_dir, inbox, tmp_path)
    reasons = dict(report.rejected)
    assert set(reasons) == {"carol__dup.csv", "notes.txt", "dave.csv", "sub"}
    assert reasons["carol__dup.csv"].startswith("duplicate ids")
    assert "<participant>__<anything>.csv" in reasons["notes.txt"] and "<participant>" in reasons["dave.csv"]
    assert "folder" in reasons["sub"]
    assert [f for f, _, _ in report.scored] == ["alice__a.csv"]


def test_links_are_refused_and_never_read(tmp_path, comp_dir, inbox):
    secret = tmp_path / "secret.csv"
    secret.write_text("id,similarity\nTOPSECRET,1\n")
    (inbox / "mallory__s.csv").symlink_to(secret)
    (inbox / "mallory__d.csv").symlink_to(tmp_path, target_is_directory=True)
    report = run(comp_dir, inbox, tmp_path)
    reasons = dict(report.rejected)
    assert "link" in reasons["mallory__s.csv"] and "link" in reasons["mallory__d.csv"]
    standings = build_leaderboard(comp_dir, leaderboard=tmp_path / "lb", rejected=report.rejected)
    for page in (standings.text, standings.markdown_path.read_text(), standings.html_path.read_text()):
        assert "TOPSECRET" not in page


def test_hard_links_are_refused_and_never_read(tmp_path, comp_dir, inbox):
    solution = comp_dir / "private" / "solution.csv"
    try:
        os.link(solution, inbox / "mallory__s.csv")
    except OSError as exc:
        pytest.skip(f"cannot make a hard link here: {exc}")
    report = run(comp_dir, inbox, tmp_path)
    assert "hard link" in dict(report.rejected)["mallory__s.csv"]
    assert not seen_path(tmp_path / "lb" / "practice.csv").exists()


def test_same_content_under_two_spellings_of_one_name_is_one_submission(tmp_path, comp_dir, inbox):
    drop(comp_dir, inbox, "Bob__1.csv")
    shutil.copy(inbox / "Bob__1.csv", inbox / "ｂｏｂ__copy.csv")
    report = run(comp_dir, inbox, tmp_path)
    assert [f for f, _, _ in report.scored] == ["Bob__1.csv"] and report.already_scored == ["ｂｏｂ__copy.csv"]


def test_macos_decomposed_names_are_the_same_person(tmp_path, comp_dir, inbox):
    drop(comp_dir, inbox, "Jos\u00e9__1.csv", 0.1, 1)
    drop(comp_dir, inbox, "Jose\u0301__2.csv", 0.2, 2)
    report = run(comp_dir, inbox, tmp_path)
    assert {p for _, p, _ in report.scored} == {"Jos\u00e9"}


def test_names_cannot_escape_or_inject(tmp_path, comp_dir, inbox):
    evil = "<img src=x onerror=alert(1)><script>alert(2)<\\script>"
    (inbox / "x").mkdir()
    drop(comp_dir, inbox / "x", "a.csv")
    os.rename(inbox / "x" / "a.csv", inbox / (evil.replace("/", "") + "__a.csv"))
    os.rmdir(inbox / "x")
    drop(comp_dir, inbox, "ok__b.csv", 0.2, 1)
    bad = inbox / "ok__bad.csv"
    bad.write_text("id,similarity\n<script>alert(3)</script>,1\n")
    lb = tmp_path / "lb"
    report = run(comp_dir, inbox, tmp_path)
    assert {p for _, p, _ in report.scored} == {"ok"}
    standings = build_leaderboard(comp_dir, leaderboard=lb, rejected=report.rejected)
    for page in (standings.markdown_path.read_text(), standings.html_path.read_text()):
        assert "<script" not in page and "<img src=x" not in page
    assert "&lt;script&gt;" in standings.html_path.read_text()  # the rejected files are listed, escaped
    assert sorted(p.name for p in lb.iterdir() if not p.name.endswith(".lock")) == [
        "practice.csv", "practice.html", "practice.inbox-rejected.json", "practice.md"]


def test_missing_inbox_is_a_user_error(tmp_path, comp_dir):
    with pytest.raises(UserError, match="inbox"):
        process_inbox(comp_dir, tmp_path / "nope", leaderboard=tmp_path / "lb")


def test_daily_limit_setting():
    assert daily_limit({}) == 5
    assert daily_limit({"max_daily_submissions": 3}) == 3
    assert daily_limit({"max_daily_submissions": None}) is None
    assert daily_limit({"max_daily_submissions": 0}) is None


@pytest.mark.parametrize("value", ["many", "5", "", 2.5, 5.0, -1, -(10 ** 30), True, False, [5], {"n": 5},
                                   float("nan"), float("inf")])
def test_daily_limit_setting_refuses_anything_but_a_whole_number(value):
    with pytest.raises(UserError, match="competition.json: max_daily_submissions must be an integer >= 0") as caught:
        daily_limit({"max_daily_submissions": value})
    assert "\n" not in str(caught.value)


# --- timestamps in the log -----------------------------------------------------------


@pytest.mark.parametrize("times", [
    ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"],
    ["1969-12-31T23:59:59Z", "2262-04-12T00:00:00Z"],     # around the nanosecond range
    ["2999-01-01T00:00:00+14:00", "1900-01-01T00:00:00-12:00"],
    ["NaN", "2025-03-03T09:00:00Z"],
    ["", "inf"],
])
def test_any_log_time_leaves_the_leaderboard_working(tmp_path, comp_dir, inbox, times, capsys):
    lb = tmp_path / "lb"
    lb.mkdir()
    rows = []
    for k, when in enumerate(times):
        row = {c: "" for c in LOG_COLUMNS}
        row.update(time=when, participant=f"p{k}", file="f.csv", sha256=f"{k:064x}", model="m",
                   public=str(0.1 + k / 10), private="0.2", rows="50", per_bin_public="{}", per_bin_private="{}")
        rows.append(",".join(row[c] for c in LOG_COLUMNS))
    (lb / "practice.csv").write_text(",".join(LOG_COLUMNS) + "\n" + "\n".join(rows) + "\n")
    common = ["--competition", str(comp_dir), "--leaderboard", str(lb)]
    assert main(["leaderboard", *common]) == 0
    assert main(["leaderboard", *common, "--private"]) == 0
    assert main(["leaderboard", *common, "--hide-private"]) == 0  # the reveal closed the inbox: undone
    drop(comp_dir, inbox, "alice__a.csv")
    assert main(["leaderboard", *common, "--inbox", str(inbox)]) == 0
    assert "1 new file(s) scored" in capsys.readouterr().out
    assert (lb / "practice.html").stat().st_size > 0


# --- watching ------------------------------------------------------------------------


def test_watch_polls_and_records_times_close_to_arrival(tmp_path, comp_dir, inbox, monkeypatch):
    clock = [T1]
    monkeypatch.setattr(classroom, "datetime", _FakeDatetime(clock))
    arrivals = {1: ("alice__a.csv", 0.1), 2: ("bob__b.csv", 0.2)}
    reports = []

    def sleep(seconds):
        clock[0] += timedelta(seconds=30)
        name = arrivals.get(len(reports))
        if name:
            drop(comp_dir, inbox, name[0], name[1], len(reports), mtime=0)

    polls = watch_inbox(comp_dir, inbox, leaderboard=tmp_path / "lb", interval=30, polls=4,
                        on_poll=reports.append, sleep=sleep)
    assert polls == 4 and [len(r.scored) for r in reports] == [0, 1, 1, 0]
    log = log_of(tmp_path)
    assert log["time"].tolist() == [T1 + timedelta(seconds=30), T1 + timedelta(seconds=60)]


def test_watch_stops_cleanly_on_ctrl_c(tmp_path, comp_dir, inbox):
    def sleep(seconds):
        raise KeyboardInterrupt

    assert watch_inbox(comp_dir, inbox, leaderboard=tmp_path / "lb", interval=1, sleep=sleep) == 1


def test_watch_does_not_hash_unchanged_files_again(tmp_path, comp_dir, inbox, monkeypatch):
    drop(comp_dir, inbox, "alice__a.csv")
    opened = []
    real = classroom._read_capped
    monkeypatch.setattr(classroom, "_read_capped", lambda path, *a: opened.append(path) or real(path, *a))
    watch_inbox(comp_dir, inbox, leaderboard=tmp_path / "lb", interval=1, polls=3, sleep=lambda s: None)
    assert len(opened) == 2          # hashed once, snapshot once; the later polls use the cache


def test_watch_judges_each_content_once(tmp_path, comp_dir, inbox, monkeypatch):
    import kit.scoring.scorer

    for k in range(3):                                           # the third is over the daily limit of 2
        drop(comp_dir, inbox, f"alice__{k}.csv", 0.1 + k / 100, k)
    (inbox / "alice__bad.csv").write_text("id,similarity\n")     # invalid
    calls = []
    real = kit.scoring.scorer.Scorer.score
    monkeypatch.setattr(kit.scoring.scorer.Scorer, "score", lambda self, path: calls.append(path) or real(self, path))
    reports = []
    watch_inbox(comp_dir, inbox, leaderboard=tmp_path / "lb", interval=1, polls=4, on_poll=reports.append,
                sleep=lambda s: None)
    assert len(calls) == 4                                       # each content once, not once per poll
    assert [len(r.scored) for r in reports] == [2, 0, 0, 0]
    assert all(len(r.rejected) == 2 for r in reports)            # still listed at every poll


def test_kit_leaderboard_watch(tmp_path, comp_dir, inbox, capsys):
    drop(comp_dir, inbox, "alice__a.csv")
    (inbox / "B\u043eb__1.csv").write_text("id,similarity\n")
    argv = ["leaderboard", "--competition", str(comp_dir), "--leaderboard", str(tmp_path / "lb"),
            "--inbox", str(inbox), "--watch", "--interval", "0.01", "--polls", "3"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("scored alice__a.csv for alice") == 1
    assert out.count("rejected B\u043eb__1.csv") == 1         # told once, not at every poll
    assert "Stopped watching" in out and "after 3 look(s)" in out
    assert (tmp_path / "lb" / "practice.html").is_file()


@pytest.mark.parametrize("extra, message", [
    (["--interval", "nan"], "--interval"),
    (["--interval", "-1"], "--interval"),
    (["--interval", "0"], "--interval"),
    (["--interval", "inf"], "--interval"),
    (["--interval", "soon"], "--interval"),
    (["--interval", "1e9"], "--interval"),
    (["--interval", "1e-400"], "--interval"),        # underflows to 0
    (["--interval", "-0"], "--interval"),
    (["--interval", "0x10"], "--interval"),
    (["--interval", ""], "--interval"),
    (["--interval", "86400.000001"], "--interval"),
    (["--polls", "0"], "--polls"),
    (["--polls", "-2"], "--polls"),
])
def test_kit_leaderboard_watch_options_are_checked(tmp_path, comp_dir, inbox, capsys, extra, message):
    argv = ["leaderboard", "--competition", str(comp_dir), "--leaderboard", str(tmp_path / "lb"),
            "--inbox", str(inbox), "--watch", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv, message", [
    (["--watch"], "need --inbox"),
    (["--interval", "5"], "need --inbox"),
    (["--inbox", "{inbox}", "--interval", "5"], "--interval needs --watch"),
])
def test_watch_flags_need_an_inbox(tmp_path, comp_dir, inbox, capsys, argv, message):
    argv = [a.replace("{inbox}", str(inbox)) for a in argv]
    assert main(["leaderboard", "--competition", str(comp_dir), *argv]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0.5", 2, 86400, " 1e-3 "])
def test_interval_accepts(value):
    assert parse_param(value, "--interval", INTERVAL) == float(value)


@pytest.mark.parametrize("interval, polls, error", [
    (0, 1, UserError), (-1, 1, UserError), (float("nan"), 1, UserError), (float("inf"), 1, UserError),
    (86400.5, 1, UserError), ("soon", 1, UserError), ("", 1, UserError), (None, 1, TypeError), (True, 1, TypeError),
    (1, 0, UserError), (1, -3, UserError), (1, 1.5, TypeError), (1, True, TypeError), (1, "3", TypeError),
])
def test_watch_inbox_refuses_bad_intervals_and_polls_before_looking(tmp_path, comp_dir, inbox, interval, polls, error):
    with pytest.raises(error, match="interval|polls"):
        watch_inbox(comp_dir, inbox, leaderboard=tmp_path / "lb", interval=interval, polls=polls,
                    sleep=lambda s: None)
    assert not (tmp_path / "lb").exists()


def test_kit_leaderboard_inbox_and_final_ranking(tmp_path, comp_dir, inbox):
    drop(comp_dir, inbox, "alice__1.csv", 0.1, 1)
    drop(comp_dir, inbox, "bob__1.csv", 0.05, 2)
    (inbox / "carol__1.csv").write_bytes(b"\xef\xbb\xbfid,similarity\n0,0.5\n")
    done = kit_cli("leaderboard", "--competition", comp_dir, "--inbox", inbox, "--no-pages", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "2 new file(s) scored" in done.stdout and "1 rejected" in done.stdout
    assert "carol__1.csv: starts with a UTF-8 byte-order mark" in done.stdout
    assert "scored alice__1.csv for alice: Public " in done.stdout  # each new file's score
    assert "scored bob__1.csv for bob: Public " in done.stdout
    table = done.stdout[done.stdout.index("new file(s) scored"):]
    assert table.index("bob") < table.index("alice")
    final = kit_cli("leaderboard", "--competition", comp_dir, "--inbox", inbox, "--private", "--no-pages",
                    cwd=tmp_path)
    assert final.returncode == 0, final.stderr
    assert "0 new file(s) scored, 2 already scored" in final.stdout
    assert "final standings on the Private rows" in final.stdout
    assert "leaderboard: Final standings" in final.stdout
    assert len(read_log(tmp_path / "leaderboard" / "practice.csv")) == 2


class _FakeDatetime:
    """Stands in for ``datetime`` in kit.board.inbox: ``now`` reads a list the test advances."""

    def __init__(self, clock):
        self.clock = clock

    def now(self, tz=None):
        return self.clock[0]

    def __getattr__(self, name):
        return getattr(datetime, name)


def test_the_final_page_keeps_the_files_the_inbox_refused(tmp_path, comp_dir, inbox):
    from kit.board.exports import read_rejected
    from kit.board.leaderboard import build_leaderboard

    drop(comp_dir, inbox, "alice__1.csv", 0.1, 1)
    (inbox / "bob__bad.csv").write_text("id,prediction\n0,0.5\n")
    lb = tmp_path / "lb"
    assert main(["leaderboard", "--competition", str(comp_dir), "--inbox", str(inbox), "--leaderboard", str(lb),
                 "--no-pages"]) == 0
    log = lb / "practice.csv"
    assert [name for name, _ in read_rejected(log)] == ["bob__bad.csv"]
    final = build_leaderboard(comp_dir, leaderboard=lb, private=True)  # no --inbox: the stored list
    page = final.html_path.read_text()
    assert "Final standings" in page and "Rejected files (1)" in page and "bob__bad.csv" in page
    assert build_leaderboard(comp_dir, leaderboard=lb, rejected=[], write_pages=False).rejected == []


@pytest.mark.parametrize("content", ["", "not json", "{}", '[["a"]]', '[[1, 2]]', '[["a", "b", "c"]]',
                                     '{"rules": {"a": "b"}}', '{"rules": [["a"]]}', '"rules"', "null"])
def test_a_damaged_rejected_list_reads_as_empty(tmp_path, content):
    from kit.board.exports import read_rejected, rejected_path

    log = tmp_path / "practice.csv"
    rejected_path(log).write_text(content)
    assert read_rejected(log) == []


# --- one hostile file never stops the class ---------------------------------------------------


def hostile_file(comp_dir, path, kind):
    """A file built to break a reader: a huge field (past the CSV module's 131,072) and a repeated id, and kin."""
    from builders import read_solution

    ids = read_solution(comp_dir)[0]
    rows = [f"{i},0.5" for i in ids]
    if kind == "huge field":
        rows = [rows[0] + " " * 140_000] + rows  # and the first id repeated
    elif kind == "huge quoted field":
        rows = [f'{ids[0]},"0.5{" " * 140_000}"'] + rows  # and the first id repeated
    elif kind == "NUL bytes":
        rows = [rows[0] + "\0" * 10] + rows[1:]
    elif kind == "lone quote":
        rows = [f'{ids[0]},"0.5'] + rows[1:]
    elif kind == "not UTF-8":
        path.write_bytes(b"id,similarity\n" + b"\xff\xfe\x00" * 1000)
        return path
    path.write_text("id,similarity\n" + "\n".join(rows) + "\n")
    return path


HOSTILE_KINDS = ["huge field", "huge quoted field", "NUL bytes", "lone quote", "not UTF-8"]


@pytest.mark.parametrize("kind", HOSTILE_KINDS)
def test_a_hostile_file_is_rejected_and_honest_files_are_scored_this_poll_and_later(comp_dir, inbox, tmp_path, kind):
    hostile_file(comp_dir, inbox / "mallory__evil.csv", kind)
    drop(comp_dir, inbox, "zed__1.csv", seed=1)  # read after the hostile one (name order)
    polls = []

    def on_poll(report):
        polls.append(report)
        if len(polls) == 1:
            drop(comp_dir, inbox, "zed__2.csv", noise=0.05, seed=2)

    assert watch_inbox(comp_dir, inbox, leaderboard=tmp_path / "lb", interval=1, polls=3, on_poll=on_poll,
                       sleep=lambda s: None) == 3
    first, second, third = polls
    assert [name for name, _, _ in first.scored] == ["zed__1.csv"]
    assert [name for name, _, _ in second.scored] == ["zed__2.csv"]
    for report in polls:
        [(name, reason)] = report.rejected
        assert name == "mallory__evil.csv" and "\n" not in reason and len(reason) < 400
        assert "Traceback" not in reason
    assert log_of(tmp_path)["file"].tolist() == ["zed__1.csv", "zed__2.csv"]


def test_the_command_keeps_watching_after_a_hostile_file(comp_dir, inbox, tmp_path):
    hostile_file(comp_dir, inbox / "mallory__evil.csv", "huge field")
    drop(comp_dir, inbox, "zed__1.csv")
    done = kit_cli("leaderboard", "--competition", comp_dir, "--leaderboard", tmp_path / "lb", "--inbox", inbox,
                   "--watch", "--interval", "0.01", "--polls", "2", "--no-pages", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "scored zed__1.csv for zed" in done.stdout and "rejected mallory__evil.csv:" in done.stdout
    assert "after 2 look(s)" in done.stdout and "Traceback" not in done.stdout + done.stderr
    # And a plain run later still scores what arrives.
    drop(comp_dir, inbox, "ann__1.csv", seed=3)
    again = kit_cli("leaderboard", "--competition", comp_dir, "--leaderboard", tmp_path / "lb", "--inbox", inbox,
                    "--no-pages", cwd=tmp_path)
    assert again.returncode == 0 and "scored ann__1.csv for ann" in again.stdout


@pytest.mark.parametrize("error", [RuntimeError("boom\nsecond line"), MemoryError(), RecursionError("deep"),
                                   KeyError("id"), OSError(5, "I/O error"), ZeroDivisionError("division")])
def test_any_failure_while_scoring_a_file_rejects_that_file_only(comp_dir, inbox, tmp_path, monkeypatch, error):
    from kit.scoring.scorer import Scorer

    real = Scorer.score

    def score(self, path):
        if b"0.123" in open(path, "rb").read():
            raise error
        return real(self, path)

    monkeypatch.setattr(Scorer, "score", score)
    bad = drop(comp_dir, inbox, "amy__1.csv")
    text = bad.read_text().splitlines()
    bad.write_text("\n".join(text[:1] + [text[1].split(",")[0] + ",0.123"] + text[2:]) + "\n")
    drop(comp_dir, inbox, "bea__1.csv", seed=4)
    for poll in range(2):
        report = run(comp_dir, inbox, tmp_path, now=T1 + poll * HOUR)
        [(name, reason)] = report.rejected
        assert name == "amy__1.csv" and "could not be judged" in reason and "\n" not in reason
    assert log_of(tmp_path)["participant"].tolist() == ["bea"]


def test_a_failure_while_storing_one_file_leaves_it_for_the_next_poll(comp_dir, inbox, tmp_path, monkeypatch):
    import sqlite3

    from kit.board.store import Database

    real = Database.record
    broken = {"amy"}

    def record(self, entry, source, once=False, **rules):
        if entry["participant"] in broken:
            raise sqlite3.OperationalError("disk I/O error")
        return real(self, entry, source, once=once, **rules)

    monkeypatch.setattr(Database, "record", record)
    drop(comp_dir, inbox, "amy__1.csv")
    drop(comp_dir, inbox, "bea__1.csv", seed=4)
    report = run(comp_dir, inbox, tmp_path)
    assert [n for n, _, _ in report.scored] == ["bea__1.csv"]
    assert report.rejected == [("amy__1.csv", "could not be judged (OperationalError: disk I/O error)")]
    broken.clear()
    report = run(comp_dir, inbox, tmp_path, now=T1 + HOUR)
    assert [n for n, _, _ in report.scored] == ["amy__1.csv"] and report.already_scored == ["bea__1.csv"]
    # Its time is still the first look at it.
    assert log_of(tmp_path).set_index("participant").loc["amy", "time"] == T1


def test_inbox_scores_are_shown_rounded(comp_dir, inbox, tmp_path):
    drop(comp_dir, inbox, "ann__1.csv", noise=0.1234567)
    [(_, _, public)] = run(comp_dir, inbox, tmp_path).scored
    assert public == round(public, 5)


def test_a_failure_while_examining_one_file_leaves_the_others(comp_dir, inbox, tmp_path, monkeypatch):
    real = classroom.participant_from_filename

    def fragile(name):
        if name.startswith("amy"):
            raise UnicodeEncodeError("utf-8", "\udcff", 0, 1, "surrogates not allowed")
        return real(name)

    monkeypatch.setattr(classroom, "participant_from_filename", fragile)
    drop(comp_dir, inbox, "amy__1.csv")
    drop(comp_dir, inbox, "bea__1.csv", seed=4)
    report = run(comp_dir, inbox, tmp_path)
    assert [n for n, _, _ in report.scored] == ["bea__1.csv"]
    [(name, reason)] = report.rejected
    assert name == "amy__1.csv" and reason.startswith("could not be judged (UnicodeEncodeError")


# --- the server's closing rules, the public rejection list -------------------------------


def _with_deadline(comp_dir, deadline):
    meta = json.loads((comp_dir / "competition.json").read_text())
    (comp_dir / "competition.json").write_text(json.dumps(dict(meta, deadline=deadline)))


@pytest.mark.parametrize("deadline, open_at, closed_at", [
    ("2025-03-03T10:00:00Z", T1, T1 + HOUR),                            # at the deadline itself: closed
    ("2025-03-03T11:00:00+01:00", T1, T1 + HOUR + timedelta(seconds=1)),  # an offset
    ("2025-03-03T10:00", T1 + HOUR - timedelta(seconds=1), T1 + HOUR),   # no zone: UTC
    ("2025-03-03", T1 + 14 * HOUR, T1 + 15 * HOUR),                     # a date alone: 23:59 UTC
])
def test_files_first_seen_after_the_deadline_are_refused(tmp_path, comp_dir, inbox, deadline, open_at, closed_at):
    _with_deadline(comp_dir, deadline)
    drop(comp_dir, inbox, "alice__a.csv", 0.1, 1)
    assert [p for _, p, _ in run(comp_dir, inbox, tmp_path, now=open_at).scored] == ["alice"]
    drop(comp_dir, inbox, "bob__a.csv", 0.2, 2)
    report = run(comp_dir, inbox, tmp_path, now=closed_at)
    assert report.scored == [] and dict(report.rejected)["bob__a.csv"].startswith("after the deadline")
    assert report.already_scored == ["alice__a.csv"]
    # Judged by first-seen time: a later poll does not move it, a file seen before stays scored.
    assert dict(run(comp_dir, inbox, tmp_path, now=closed_at + DAY).rejected)["bob__a.csv"].startswith("after")
    assert log_of(tmp_path)["participant"].tolist() == ["alice"]


def test_a_file_first_seen_before_the_deadline_is_judged_by_that_time(tmp_path, comp_dir, inbox, monkeypatch):
    """Seen in time but not stored then (the store failed): a later poll still takes it."""
    from kit.board.store import Database

    _with_deadline(comp_dir, "2025-03-03T10:00:00Z")
    real, failing = Database.record, [True]

    def record(self, entry, source, once=False, **rules):
        if failing:
            failing.clear()
            raise OSError("disk full")
        return real(self, entry, source, once=once, **rules)

    monkeypatch.setattr(Database, "record", record)
    drop(comp_dir, inbox, "alice__a.csv")
    assert run(comp_dir, inbox, tmp_path, now=T1).scored == []
    assert [p for _, p, _ in run(comp_dir, inbox, tmp_path, now=T1 + 2 * HOUR).scored] == ["alice"]


def test_the_reveal_closes_the_inbox(tmp_path, comp_dir, inbox):
    drop(comp_dir, inbox, "alice__a.csv", 0.1, 1)
    run(comp_dir, inbox, tmp_path)
    build_leaderboard(comp_dir, leaderboard=tmp_path / "lb", private=True, write_pages=False)
    drop(comp_dir, inbox, "alice__b.csv", 0.05, 2)
    drop(comp_dir, inbox, "bob__a.csv", 0.2, 3)
    (inbox / "carol__bad.csv").write_text("id,similarity\n")
    report = run(comp_dir, inbox, tmp_path, now=T1 + HOUR)
    reasons = dict(report.rejected)
    assert report.scored == [] and report.already_scored == ["alice__a.csv"]
    assert reasons["alice__b.csv"] == reasons["bob__a.csv"] == "the final ranking is revealed; submissions are closed"
    assert len(log_of(tmp_path)) == 1


@pytest.mark.parametrize("spelling", ["mallory", "MALLORY", "ｍａｌｌｏｒｙ", "Mallory"])
def test_a_revoked_participant_is_refused_by_the_inbox(tmp_path, comp_dir, inbox, spelling):
    from kit.board.store import Database

    db = Database(comp_dir / "private" / "classroom.sqlite")
    db.add_participant("Mallory", T1)
    db.revoke_participant("mallory", T1)
    db.close()
    drop(comp_dir, inbox, f"{spelling}__a.csv")
    drop(comp_dir, inbox, "zed__a.csv", 0.2, 2)
    report = run(comp_dir, inbox, tmp_path)
    assert [p for _, p, _ in report.scored] == ["zed"]
    assert dict(report.rejected)[f"{spelling}__a.csv"].startswith("revoked")
    assert dict(report.public)[f"{spelling}__a.csv"].startswith("revoked")


def test_a_file_kit_score_stores_during_the_poll_is_stored_once(tmp_path, comp_dir, inbox, monkeypatch):
    """`kit score` records the same file after the inbox looked at the store: the store says already scored."""
    from kit.board.recording import record_result

    path = drop(comp_dir, inbox, "alice__a.csv")
    real = classroom.store_entries

    def snapshot_then_kit_score(db):
        rows = real(db)
        record_result(kit_score(comp_dir, path), participant="alice", leaderboard=tmp_path / "lb")
        return rows

    monkeypatch.setattr(classroom, "store_entries", snapshot_then_kit_score)
    report = run(comp_dir, inbox, tmp_path)
    assert report.scored == [] and report.already_scored == ["alice__a.csv"]
    assert len(log_of(tmp_path)) == 1


def test_the_daily_limit_holds_when_another_writer_stores_during_the_poll(tmp_path, comp_dir, inbox, monkeypatch):
    """Another process uses the last slot after the inbox's snapshot: the insert's own check refuses."""
    from kit.board.store import Database

    drop(comp_dir, inbox, "alice__0.csv", 0.1, 0)
    run(comp_dir, inbox, tmp_path)  # one of two used
    drop(comp_dir, inbox, "alice__1.csv", 0.11, 1)
    real = classroom.store_entries

    def snapshot_then_server(db):
        rows = real(db)
        other = Database(comp_dir / "private" / "classroom.sqlite")
        other.record({"participant": "alice", "time": T1 + HOUR, "sha256": "f" * 64, "public": 0.3}, "score")
        other.close()
        return rows

    monkeypatch.setattr(classroom, "store_entries", snapshot_then_server)
    report = run(comp_dir, inbox, tmp_path, now=T1 + HOUR)
    assert report.scored == [] and dict(report.rejected)["alice__1.csv"].startswith("daily limit")


def kit_score(comp_dir, path):
    import kit

    return kit.score_submission(path, kit.load_competition(comp_dir))


@pytest.mark.parametrize("content, quoted", [
    ('id,similarity\n0,"0.5\n', '0,"0.5'),
    ("id,similarity\nSECRET-LINE-42,0.5\n", "SECRET-LINE-42"),
    ("id,similarity\n0,0.5\n0,0.5\n", "0,0.5"),
    ("secret_header,x\n1,2\n", "secret_header"),
    ("id,similarity\n" + "\n".join(f"{i},0.{i}" for i in range(3)) + "\nleaked-tail,1\n", "leaked-tail"),
])
def test_what_others_read_names_the_rule_never_the_files_lines(tmp_path, comp_dir, inbox, capsys, content, quoted):
    from kit.cli import main

    (inbox / "bob__bad.csv").write_text(content)
    lb = tmp_path / "lb"
    assert main(["leaderboard", "--competition", str(comp_dir), "--leaderboard", str(lb), "--inbox", str(inbox)]) == 0
    out = capsys.readouterr().out
    [(name, reason)] = json.loads((lb / "practice.inbox-rejected.json").read_text())["rules"]
    assert name == "bob__bad.csv" and reason.startswith("invalid submission")
    for public in ("practice.inbox-rejected.json", "practice.md", "practice.html", "practice.csv"):
        assert quoted not in (lb / public).read_text(), public
    # The teacher has the full reason: the terminal of their command, and private/ (owner only).
    full = comp_dir / "private" / "inbox-rejected.json"
    assert full.stat().st_mode & 0o077 == 0
    teacher = dict(map(tuple, json.loads(full.read_text())["reasons"]))["bob__bad.csv"]
    assert "rejected bob__bad.csv: " + teacher in out
    assert not teacher.startswith("invalid submission")
    # The next view without --inbox lists the public rules too.
    assert main(["leaderboard", "--competition", str(comp_dir), "--leaderboard", str(lb)]) == 0
    assert "invalid submission" in capsys.readouterr().out and quoted not in (lb / "practice.html").read_text()


def test_a_store_made_before_the_first_inbox_run_never_believes_a_journal(tmp_path, comp_dir, inbox):
    from kit.board.store import Database

    Database(comp_dir / "private" / "classroom.sqlite").close()  # `kit participants add`, `kit serve`...
    path = drop(comp_dir, inbox, "mallory__a.csv")
    forged = seen_path(tmp_path / "lb" / "practice.csv")
    forged.parent.mkdir()
    forged.write_text(_journal_line("mallory__a.csv", path.stat().st_size,
                                    hashlib.sha256(path.read_bytes()).hexdigest(), "2020-01-01T00:00:00Z"))
    assert run(comp_dir, inbox, tmp_path).first_seen["mallory__a.csv"] == T1


def test_an_earlier_versions_rejected_list_publishes_no_reason(tmp_path, comp_dir):
    """Written before the lists named rules only: its reasons may quote a file, so the pages leave them out."""
    from kit.board.exports import read_rejected, rejected_path

    lb = tmp_path / "lb"
    lb.mkdir()
    rejected_path(lb / "practice.csv").write_text(json.dumps([["bob__bad.csv", "line 2: '0,SECRET' is not closed"]]))
    [(name, rule)] = read_rejected(lb / "practice.csv")
    assert name == "bob__bad.csv" and "SECRET" not in rule
    page = build_leaderboard(comp_dir, leaderboard=lb).html_path.read_text()
    assert "bob__bad.csv" in page and "SECRET" not in page


# --- final lists (<participant>__final.txt) ------------------------------------------------------------


def _finals(comp_dir):
    """The store's chosen final submissions as ``{participant: sorted file names}``."""
    db = Database(comp_dir / "private" / "classroom.sqlite")
    try:
        names = {row["id"]: row["file_name"] for row in db.submissions()}
        return {who: sorted(names[i] for i in ids) for who, ids in db.finals().items()}
    finally:
        db.close()


@pytest.fixture
def three_files(tmp_path, comp_dir, inbox):
    """alice's best-Public a, and b and c; bob's one file; all scored at T1 (no daily limit)."""
    meta = json.loads((comp_dir / "competition.json").read_text())
    (comp_dir / "competition.json").write_text(json.dumps(dict(meta, max_daily_submissions=None)))
    for name, noise, seed in [("alice__a.csv", 0.02, 1), ("alice__b.csv", 0.3, 2), ("alice__c.csv", 0.15, 3),
                              ("bob__1.csv", 0.1, 4)]:
        drop(comp_dir, inbox, name, noise, seed)
    assert len(run(comp_dir, inbox, tmp_path).scored) == 4
    return inbox


def test_a_final_list_ranks_on_the_best_private_of_the_listed_files(tmp_path, comp_dir, three_files):
    (three_files / "alice__final.txt").write_text("alice__b.csv\n\nalice__c.csv\n")
    report = run(comp_dir, three_files, tmp_path, now=T1 + HOUR)
    assert report.rejected == [] and report.finals == [("alice__final.txt", "alice", ["alice__b.csv", "alice__c.csv"])]
    assert _finals(comp_dir) == {"alice": ["alice__b.csv", "alice__c.csv"]}
    db = Database(comp_dir / "private" / "classroom.sqlite")
    private = {row["file_name"]: row["private"] for row in db.submissions()}  # the log hides them
    db.close()
    final = build_leaderboard(comp_dir, leaderboard=tmp_path / "lb", private=True, write_pages=False)
    rows = {row.participant: row for row in final.ranking.itertuples(index=False)}
    assert rows["alice"].basis == "selected" and rows["bob"].basis == "best Public"
    assert rows["alice"].private == pytest.approx(min(private["alice__b.csv"], private["alice__c.csv"]), abs=1e-5)
    assert rows["alice"].private != pytest.approx(private["alice__a.csv"], abs=1e-5)
    # Revealed, the list honoured before stays honoured: read again, it is not refused.
    assert run(comp_dir, three_files, tmp_path, now=T1 + 2 * HOUR).rejected == []


@pytest.mark.parametrize("content, reason", [
    (b"bob__1.csv\n", "another participant's file"),
    (b"alice__a.csv\nalice__b.csv\nalice__c.csv\n", "at most 2 file names"),  # a third file
    (b"alice__gone.csv\n", "not a submission file in the inbox"),
    (b"alice__a.csv\nalice__gone.csv\n", "not a submission file in the inbox"),  # one bad name spoils the list
    (b"../inbox/alice__a.csv\n", "not a submission file in the inbox"),
    (b"/etc/passwd\n", "not a submission file in the inbox"),
    (b"alice__final.txt\n", "not a submission file in the inbox"),
    (b"alice__broken.csv\n", "not a scored submission"),
    (b"ALICE__A.CSV\n", "not a submission file in the inbox"),  # file names are matched as written
    (b"alice__a.csv\x1b[2J\n", "not a submission file in the inbox"),
    (b"\xff\xfealice__a.csv\n", "expected UTF-8 text"),
])
def test_a_bad_final_list_is_rejected_whole_and_changes_nothing(tmp_path, comp_dir, three_files, content, reason):
    (three_files / "alice__broken.csv").write_text("id,similarity\n0,0.5\n")
    (three_files / "alice__final.txt").write_text("alice__a.csv\n")
    run(comp_dir, three_files, tmp_path, now=T1 + HOUR)
    assert _finals(comp_dir) == {"alice": ["alice__a.csv"]}
    (three_files / "alice__final.txt").write_bytes(content)
    report = run(comp_dir, three_files, tmp_path, now=T1 + 2 * HOUR)
    lines = [r for name, r in report.rejected if name == "alice__final.txt"]
    assert len(lines) == 1 and reason in lines[0] and "\x1b" not in lines[0], lines
    assert dict(report.public)["alice__final.txt"] == FINAL_RULE  # others never read the names listed
    assert _finals(comp_dir) == {"alice": ["alice__a.csv"]} and report.finals == []


def test_a_final_list_first_seen_after_the_deadline_changes_nothing(tmp_path, comp_dir, three_files):
    _with_deadline(comp_dir, "2025-03-03T10:00:00Z")
    (three_files / "alice__final.txt").write_text("alice__b.csv\n")
    report = run(comp_dir, three_files, tmp_path, now=T1 + HOUR)
    (line,) = [r for name, r in report.rejected if name == "alice__final.txt"]
    assert "after the deadline" in line and _finals(comp_dir) == {}


def test_a_final_list_first_seen_before_the_deadline_counts_from_that_time(tmp_path, comp_dir, three_files):
    _with_deadline(comp_dir, "2025-03-03T10:00:00Z")
    (three_files / "alice__final.txt").write_text("alice__b.csv\n")
    assert run(comp_dir, three_files, tmp_path, now=T1 + HOUR / 2).finals
    # Replaced after the deadline: a new content, first seen now, is refused; the earlier choice stands.
    (three_files / "alice__final.txt").write_text("alice__c.csv\n")
    report = run(comp_dir, three_files, tmp_path, now=T1 + 2 * HOUR)
    assert "after the deadline" in dict(report.rejected)["alice__final.txt"]
    assert _finals(comp_dir) == {"alice": ["alice__b.csv"]}


def test_an_empty_final_list_takes_the_choice_back(tmp_path, comp_dir, three_files):
    (three_files / "alice__final.txt").write_text("alice__b.csv\n")
    run(comp_dir, three_files, tmp_path, now=T1 + HOUR)
    (three_files / "alice__final.txt").write_text("\n")
    assert run(comp_dir, three_files, tmp_path, now=T1 + 2 * HOUR).rejected == []
    assert _finals(comp_dir) == {}


@pytest.mark.parametrize("name, expected", [
    ("ALICE__FINAL.TXT", {"alice": ["alice__c.csv"]}),        # one participant, any case
    ("ａｌｉｃｅ__final.txt", {"alice": ["alice__c.csv"]}),     # full-width look-alike of the same name
    ("alice__v2__final.txt", {}),                               # not a final list: a misnamed file
    ("a\u202eb__final.txt", {}),                                # a refused participant name
    ("__final.txt", {}),
])
def test_final_list_names_follow_the_inbox_identity_rules(tmp_path, comp_dir, three_files, name, expected):
    (three_files / name).write_text("alice__c.csv\n")
    report = run(comp_dir, three_files, tmp_path, now=T1 + HOUR)
    assert _finals(comp_dir) == expected
    assert (name in dict(report.rejected)) is (not expected)


def test_hostile_final_list_files_are_refused_unread(tmp_path, comp_dir, three_files):
    (three_files / "alice__final.txt").write_bytes(b"alice__c.csv\n" + b" " * FINAL_LIST_BYTES)
    (tmp_path / "outside.txt").write_text("bob__1.csv\n")
    (three_files / "bob__final.txt").symlink_to(tmp_path / "outside.txt")
    report = run(comp_dir, three_files, tmp_path, now=T1 + HOUR)
    rejected = dict(report.rejected)
    assert "a final list is at most" in rejected["alice__final.txt"] and "is a link" in rejected["bob__final.txt"]
    assert _finals(comp_dir) == {}


def test_kit_leaderboard_tells_the_teacher_a_choice_and_the_pages_keep_it_private(tmp_path, comp_dir, three_files,
                                                                                  capsys):
    (three_files / "alice__final.txt").write_text("alice__c.csv\n")
    lb = tmp_path / "lb"
    assert main(["leaderboard", "--competition", str(comp_dir), "--leaderboard", str(lb),
                 "--inbox", str(three_files)]) == 0
    assert "final submissions of alice (alice__final.txt): alice__c.csv" in capsys.readouterr().out
    assert "alice__final.txt" not in (lb / "practice.html").read_text()
    assert _finals(comp_dir) == {"alice": ["alice__c.csv"]}
