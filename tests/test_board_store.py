"""The classroom database: schema, tokens, participants and the daily limit under concurrency."""
import os
import sqlite3
import threading
from datetime import timedelta

import pytest

from kit.board.identity import participant_key
from kit.board.migrations import KEY_VERSION_SETTING, SCHEMA_VERSION, key_version
from kit.board.phases import SubmissionsClosed, parse_utc, utc_iso
from kit.board.store import SEEN_IMPORTED, Database, LimitReached, ParticipantRevoked
from kit.board.tokens import ensure_teacher_token, hash_token, read_teacher_token
from kit.errors import UserError
from server_builders import START


@pytest.fixture
def db(tmp_path):
    database = Database(tmp_path / "private" / "classroom.sqlite")
    yield database
    database.close()


def record(participant_id, when, status="scored", public=0.2):
    return {"participant_id": participant_id, "submitted_at": when, "sha256": "0" * 64,
            "stored_path": "submissions/x.csv", "file_name": "x.csv", "size": 10, "rows": 1, "public": public,
            "private": public, "per_bin_public": "{}", "per_bin_private": "{}", "status": status}


def test_new_database_is_wal_versioned_and_sound(db):
    assert db.schema_version == SCHEMA_VERSION
    assert db.integrity_check() == "ok"
    with sqlite3.connect(db.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"participants", "submissions", "settings"} <= tables


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "classroom.sqlite"
    Database(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(UserError, match="newer than this kit"):
        Database(path)


@pytest.mark.parametrize("content", [b"not a database at all" * 100, b"SQLite format 3\x00" + b"\xff" * 4000])
def test_garbage_file_is_a_user_error(tmp_path, content):
    path = tmp_path / "classroom.sqlite"
    path.write_bytes(content)
    with pytest.raises(UserError, match="not a usable classroom database"):
        Database(path)


def test_only_token_hashes_are_stored(db, tmp_path):
    name, token = db.add_participant("Ada", START)
    assert name == "Ada" and len(token) >= 32
    raw = b"".join(p.read_bytes() for p in tmp_path.rglob("classroom.sqlite*"))
    assert token.encode() not in raw
    assert hash_token(token).encode() in raw or db.participant_for_token(token).name == "Ada"
    assert db.participant_for_token(token + "x") is None


def test_tokens_are_unique_and_random(db):
    tokens = [token for _, token in db.add_participants([f"p{i}" for i in range(50)], START)]
    assert len(set(tokens)) == 50


@pytest.mark.parametrize("first, second", [
    ("Bob", "BOB"), ("Bob", "ｂｏｂ"), ("Bob", " bob "), ("Ann Lee", "ann_lee"), ("Alice", "AIice"),
    ("Bob", "ВОВ"),
])
def test_names_that_are_one_person_collide(db, first, second):
    db.add_participant(first, START)
    with pytest.raises(UserError, match="same person|already registered"):
        db.add_participant(second, START)
    assert len(db.participants()) == 1


@pytest.mark.parametrize("bad", ["", "   ", "a\x00b", "x" * 41, "Bоb", "<script>", "../etc", "a\u202eb", "-rf"])
def test_refused_names_add_nobody(db, bad):
    with pytest.raises(UserError):
        db.add_participants(["Fine", bad], START)
    assert db.participants() == []


def test_duplicate_in_one_batch_adds_nobody(db):
    with pytest.raises(UserError, match="same person"):
        db.add_participants(["Ann", "Bob", "ANN"], START)
    assert db.participants() == []


def test_name_is_shown_as_first_written(db):
    name, _ = db.add_participant("  José   Pérez ", START)
    assert name == "José Pérez"
    db.revoke_participant("josé pérez", START)
    again, _ = db.add_participant("JOSÉ PÉREZ", START)
    assert again == "José Pérez"  # the same person keeps their first spelling


def test_revoke_unknown_or_twice(db):
    with pytest.raises(UserError, match="no participant"):
        db.revoke_participant("nobody", START)
    db.add_participant("Ada", START)
    db.revoke_participant("Ada", START)
    with pytest.raises(UserError, match="already revoked"):
        db.revoke_participant("ADA", START)


def test_daily_limit_holds_under_concurrent_uploads(tmp_path):
    path = tmp_path / "classroom.sqlite"
    db = Database(path)
    (_, token), = db.add_participants(["Ada"], START)
    pid = db.participant_for_token(token).id
    window = (START.replace(hour=0), START.replace(hour=0) + timedelta(days=1))
    outcomes, barrier = [], threading.Barrier(12)

    def upload(k):
        # Half the writers use their own connection, as a second process would.
        mine = db if k % 2 else Database(path)
        barrier.wait()
        try:
            outcomes.append(mine.add_submission(record(pid, START + timedelta(seconds=k)), limit=5, window=window))
        except LimitReached:
            outcomes.append("limit")

    threads = [threading.Thread(target=upload, args=(k,)) for k in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(1 for o in outcomes if o != "limit") == 5
    assert db.count_scored(pid, *window) == 5


def test_errors_do_not_count_toward_the_limit(db):
    (_, token), = db.add_participants(["Ada"], START)
    pid = db.participant_for_token(token).id
    window = (START - timedelta(hours=1), START + timedelta(hours=1))
    db.add_submission(record(pid, START, status="error", public=None), limit=1, window=window)
    db.add_submission(record(pid, START), limit=1, window=window)
    with pytest.raises(LimitReached):
        db.add_submission(record(pid, START), limit=1, window=window)


@pytest.mark.parametrize("offset, accepted", [(timedelta(microseconds=-1), True), (timedelta(0), False),
                                              (timedelta(seconds=1), False)])
def test_a_submission_at_or_after_its_deadline_is_refused_in_the_insert(db, offset, accepted):
    (_, token), = db.add_participants(["Ada"], START)
    pid = db.participant_for_token(token).id
    if accepted:
        db.add_submission(record(pid, START + offset), closes_at=START)
    else:
        with pytest.raises(SubmissionsClosed) as closed:
            db.add_submission(record(pid, START + offset), closes_at=START)
        assert closed.value.reason == "deadline"
    assert len(db.submissions()) == int(accepted)


def test_a_submission_after_the_reveal_is_refused_in_the_insert(db):
    (_, token), = db.add_participants(["Ada"], START)
    pid = db.participant_for_token(token).id
    db.set_revealed(True)
    with pytest.raises(SubmissionsClosed) as closed:
        db.add_submission(record(pid, START), while_hidden=True)
    assert closed.value.reason == "revealed" and db.submissions() == []
    db.add_submission(record(pid, START))  # without the check (the scorer's own records) it goes in
    db.set_revealed(False)
    db.add_submission(record(pid, START), while_hidden=True)
    assert len(db.submissions()) == 2


def test_reveal_flag_persists(tmp_path):
    path = tmp_path / "classroom.sqlite"
    db = Database(path)
    assert db.revealed is False
    db.set_revealed(True)
    db.close()
    assert Database(path).revealed is True


def test_times_are_fixed_width_utc():
    text = utc_iso(START)
    assert text == "2026-03-01T12:00:00.000000Z" and parse_utc(text) == START
    with pytest.raises(ValueError):
        utc_iso(START.replace(tzinfo=None))


def test_teacher_token_created_once_owner_only(tmp_path):
    token, created = ensure_teacher_token(tmp_path / "private")
    again, created_again = ensure_teacher_token(tmp_path / "private")
    assert created and not created_again and token == again
    assert os.stat(tmp_path / "private" / "teacher_token").st_mode & 0o777 == 0o600


@pytest.mark.parametrize("content", [b"", b"short", b"\xff\xfe" * 20, b"has a space in it and more text"])
def test_damaged_teacher_token_is_a_user_error(tmp_path, content):
    path = tmp_path / "teacher_token"
    path.write_bytes(content)
    with pytest.raises(UserError, match="teacher token"):
        read_teacher_token(path)


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_database_files_are_owner_only_whatever_the_umask(tmp_path, umask):
    import os
    import stat

    path = tmp_path / "private" / "classroom.sqlite"
    path.parent.mkdir()
    path.touch(mode=0o666)  # left readable by an earlier kit
    old = os.umask(umask)
    try:
        path.chmod(0o666)
        db = Database(path)
        db.add_participant("Ada", START)
        files = [p for p in path.parent.iterdir() if p.name.startswith("classroom.sqlite")]
        assert {p.name for p in files} >= {"classroom.sqlite", "classroom.sqlite-wal"}
        for p in files:
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, p.name
        db.close()
    finally:
        os.umask(old)


# --- one store for kit serve, kit score and the inbox -----------------------------------------


def entry(who, when=START, sha="a" * 64, public=0.2):
    return {"participant": who, "time": when, "file": f"{who}.csv", "sha256": sha, "model": "gbm", "public": public,
            "private": 0.3, "rows": 10, "per_bin_public": {"0.0-0.1": public}, "per_bin_private": {}}


def test_a_version_1_database_is_upgraded_with_its_rows(tmp_path):
    from kit.board import migrations as dbmod

    path = tmp_path / "classroom.sqlite"
    with sqlite3.connect(path) as conn:
        for statement in dbmod._statements(dbmod._MIGRATIONS[0]):
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
        conn.execute("INSERT INTO participants (name, key, token_sha256, created_at) VALUES ('Ada', 'ada', 'h', 'x')")
        conn.execute("INSERT INTO submissions (participant_id, submitted_at, sha256, stored_path, file_name, size, "
                     "public, status) VALUES (1, ?, 's', 'p', 'f.csv', 1, 0.2, 'scored')", (utc_iso(START),))
    upgraded = Database(path)
    assert upgraded.schema_version == SCHEMA_VERSION and upgraded.integrity_check() == "ok"
    [row] = upgraded.submissions()
    assert row["participant"] == "Ada" and row["source"] == "server" and row["public"] == 0.2
    assert [p["name"] for p in upgraded.participants()] == ["Ada"]
    upgraded.close()


def test_named_participants_have_no_token_until_added(db):
    db.record(entry("Bo"), "score")
    db.record(entry("bo", sha="b" * 64), "inbox")  # the same person, shown as first written
    assert db.participants() == [] and {r["participant"] for r in db.submissions()} == {"Bo"}
    (name, token), = db.add_participants(["BO"], START)
    assert name == "Bo" and db.participant_for_token(token).name == "Bo"
    assert db.participants()[0]["entries"] == 2
    with pytest.raises(UserError, match="already registered|same person"):
        db.add_participants(["Bo"], START)


@pytest.mark.parametrize("source", ["server", "elsewhere", ""])
def test_record_takes_known_sources_only(db, source):
    with pytest.raises(ValueError, match="source"):
        db.record(entry("Bo"), source)


@pytest.mark.parametrize("public", [None, "", float("nan"), float("inf")])
def test_record_refuses_a_row_without_a_finite_public_score(db, public):
    with pytest.raises(ValueError, match="finite Public"):
        db.record(entry("Bo", public=public), "score")
    assert db.submissions() == []


@pytest.mark.parametrize("bad", ["../x", "a\u202eb", "", "x" * 80])
def test_record_refuses_a_name_nobody_could_register(db, bad):
    with pytest.raises(UserError):
        db.record(entry(bad), "score")
    assert db.submissions() == []


def _concurrently(path, work, n=10):
    """The outcomes of ``work(db, k)``, k < n, in n threads at once, each with its own connection (as processes)."""
    Database(path).close()
    barrier, outcomes = threading.Barrier(n), []

    def run(k):
        mine = Database(path)
        barrier.wait()
        try:
            outcomes.append(work(mine, k))
        finally:
            mine.close()

    threads = [threading.Thread(target=run, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_one_file_stored_once_by_concurrent_writers(tmp_path):
    path = tmp_path / "classroom.sqlite"
    outcomes = _concurrently(path, lambda mine, k: mine.record(entry("Ada", START + timedelta(seconds=k)), "score",
                                                                once=True)[0])
    assert sum(1 for o in outcomes if o is not None) == 1
    db = Database(path)
    assert len(db.submissions()) == 1 and db.integrity_check() == "ok"
    db.close()


def test_an_explicit_import_runs_once_per_file_and_skips_rows_already_stored(db):
    db.record(entry("Ada"), "score")
    rows = [entry("Ada"), entry("Ada", START + timedelta(minutes=1)), entry("Cy", None, sha="c" * 64)]
    assert db.import_entries(rows, "imported_log:/x.csv") == 2
    assert db.import_entries(rows, "imported_log:/x.csv") is None
    stored = db.submissions()
    assert [r["source"] for r in stored] == ["score", "log", "log"]
    assert stored[-1]["participant"] == "Cy" and stored[-1]["submitted_at"].startswith("9999")


# --- the closing rules of kit score and the inbox, in the insert's transaction ---------------


@pytest.mark.parametrize("offset, accepted", [(-1, True), (0, False), (1, False)])
def test_record_refuses_at_or_after_the_deadline(db, offset, accepted):
    deadline = START + timedelta(hours=1)
    when = deadline + timedelta(seconds=offset)
    if accepted:
        db.record(entry("Bo", when), "inbox", closes_at=deadline)
    else:
        with pytest.raises(SubmissionsClosed) as closed:
            db.record(entry("Bo", when), "inbox", closes_at=deadline)
        assert closed.value.reason == "deadline"
    assert len(db.submissions()) == int(accepted)


def test_record_refuses_an_unknown_time_when_there_is_a_deadline(db):
    with pytest.raises(SubmissionsClosed):
        db.record(entry("Bo", None), "inbox", closes_at=START)


@pytest.mark.parametrize("source", ["score", "inbox"])
def test_record_refuses_once_revealed_and_again_after_hiding(db, source):
    db.set_revealed(True)
    with pytest.raises(SubmissionsClosed) as closed:
        db.record(entry("Bo"), source)
    assert closed.value.reason == "revealed" and db.submissions() == []
    db.set_revealed(False)
    assert db.record(entry("Bo"), source)[0] is not None


@pytest.mark.parametrize("name", ["Ada", "ADA", "ａｄａ", "ada", "Adá", "AᴅA"])
def test_record_refuses_a_revoked_participant_under_any_spelling(db, name):
    db.add_participant("Ada", START)
    db.revoke_participant("Ada", START)
    with pytest.raises(ParticipantRevoked):
        db.record(entry(name), "inbox")
    assert db.submissions() == []


def test_the_daily_limit_holds_across_concurrent_writers(tmp_path):
    """Ten processes (own connections) recording different files of one person: exactly the limit is stored."""
    path = tmp_path / "classroom.sqlite"
    window = (START, START + timedelta(days=1))

    def write(mine, k):
        try:
            mine.record(entry("Ada", START + timedelta(seconds=k), sha=f"{k:064x}"), "inbox", once=True, limit=3,
                        window=window)
            return "stored"
        except LimitReached:
            return "limit"

    assert sorted(_concurrently(path, write)) == ["limit"] * 7 + ["stored"] * 3
    db = Database(path)
    assert len(db.submissions()) == 3
    db.close()


def test_the_limit_counts_the_window_only(db):
    window = (START, START + timedelta(days=1))
    for k in range(2):
        db.record(entry("Ada", START - timedelta(hours=1 + k), sha=f"{k:064x}"), "inbox", limit=2, window=window)
    db.record(entry("Ada", START, sha="e" * 64), "inbox", limit=2, window=window)
    db.record(entry("Ada", START + timedelta(hours=1), sha="f" * 64), "inbox", limit=2, window=window)
    with pytest.raises(LimitReached):
        db.record(entry("Ada", START + timedelta(hours=2), sha="d" * 64), "inbox", limit=2, window=window)


# --- first-seen times and imports ----------------------------------------------------------------


def test_first_seen_is_kept_once_and_never_moves(db):
    assert db.first_seen("a__1.csv", 10, "ab", START) == START
    assert db.first_seen("a__1.csv", 10, "ab", START + timedelta(days=3)) == START
    assert db.first_seen("a__1.csv", 10, "ab", START - timedelta(days=3)) == START  # not earlier either
    assert db.first_seen("a__1.csv", 11, "ab", START + timedelta(hours=1)) == START + timedelta(hours=1)
    assert [r["size"] for r in db.inbox_seen()] == [10, 11]


def test_an_old_journal_is_imported_only_into_a_store_without_times(db):
    rows = [("a__1.csv", 10, "ab", START - timedelta(days=1)), ("a__1.csv", 10, "ab", START - timedelta(days=2))]
    assert db.import_first_seen(rows) == 2
    assert db.first_seen("a__1.csv", 10, "ab", START) == START - timedelta(days=2)  # the earliest wins
    assert db.import_first_seen([("b__1.csv", 1, "cd", START - timedelta(days=9))]) is None
    assert db.first_seen("b__1.csv", 1, "cd", START) == START


def test_a_store_that_kept_times_or_said_no_never_imports_a_journal(tmp_path):
    used = Database(tmp_path / "used.sqlite")
    used.first_seen("a__1.csv", 10, "ab", START)
    assert used.import_first_seen([("b__1.csv", 1, "cd", START - timedelta(days=9))]) is None
    used.close()
    refused = Database(tmp_path / "refused.sqlite")
    refused.mark_imported(SEEN_IMPORTED)
    assert refused.import_first_seen([("b__1.csv", 1, "cd", START)]) is None and refused.inbox_seen() == []
    refused.close()


def test_an_automatic_log_import_happens_once_and_never_over_scored_rows(tmp_path):
    fresh = Database(tmp_path / "fresh.sqlite")
    assert fresh.may_import_log()
    assert fresh.import_entries([entry("Ada"), entry("Cy", None, sha="c" * 64)]) == 2
    assert not fresh.may_import_log() and fresh.import_entries([entry("Mallory", sha="d" * 64)]) is None
    assert {r["source"] for r in fresh.submissions()} == {"log"}
    fresh.close()
    used = Database(tmp_path / "used.sqlite")
    used.record(entry("Ada"), "score")
    assert not used.may_import_log() and used.import_entries([entry("Mallory", sha="d" * 64)]) is None
    used.close()


def test_schema_4_upgrades_a_version_3_store_with_its_rows(tmp_path):
    from kit.board import migrations as dbmod

    path = tmp_path / "classroom.sqlite"
    with sqlite3.connect(path) as conn:
        for step in range(3):
            for statement in dbmod._statements(dbmod._MIGRATIONS[step]):
                conn.execute(statement)
        conn.execute("PRAGMA user_version = 3")
    db = Database(path)
    assert db.schema_version == SCHEMA_VERSION >= 4 and db.inbox_seen() == []
    assert db.may_import_log()  # an older store that never imported: its folder's log may still come in
    db.close()
    made_here = Database(tmp_path / "new.sqlite")
    made_here.close()
    assert not Database(tmp_path / "new.sqlite").may_import_log()  # made by this version, opened again


# --- identity keys recomputed when the key function changes ------------------------------


def _stale(path, rows):
    """A store whose participants carry keys of an older key function (``rows``: name, old key)."""
    db = Database(path)
    with db._write() as conn:
        for k, (name, key) in enumerate(rows):
            conn.execute("INSERT INTO participants (name, key, token_sha256, created_at) VALUES (?, ?, ?, ?)",
                         (name, key, hash_token(f"t{k}"), "2026-01-01T00:00:00.000000Z"))
        conn.execute("UPDATE settings SET value = 'old' WHERE key = ?", (KEY_VERSION_SETTING,))
    db.close()


def test_stale_keys_are_recomputed_on_open(tmp_path, capsys):
    path = tmp_path / "classroom.sqlite"
    _stale(path, [("ᴋim", "ᴋim"), ("Bøb", "bøb")])  # small capital K, o with a stroke: folded now
    db = Database(path)
    assert {p["name"]: p["key"] for p in db.participants()} == {"ᴋim": participant_key("kim"),
                                                               "Bøb": participant_key("bob")}
    assert db.setting(KEY_VERSION_SETTING) == key_version()
    # "kim" is now the same person as "ᴋim": their files go to them, not to a new participant.
    db.record(entry("kim"), "score")
    assert [s["participant"] for s in db.submissions()] == ["ᴋim"]
    db.close()
    assert capsys.readouterr().err == ""


def test_participants_colliding_under_a_new_key_are_kept_apart_and_said_once(tmp_path, capsys):
    path = tmp_path / "classroom.sqlite"
    _stale(path, [("Kim", "kim"), ("ᴋim", "ᴋim"), ("Bob", "bob"), ("Bøb", "bøb")])
    db = Database(path)
    assert len(db.participants()) == 4
    keys = [p["key"] for p in db.participants()]
    assert len(set(keys)) == 4 and keys[0] == participant_key("Kim") and keys[2] == participant_key("Bob")
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'Kim' and 'ᴋim'" in err and "'Bob' and 'Bøb'" in err
    db.close()
    Database(path).close()
    assert capsys.readouterr().err == ""  # said once


# --- opening a file others hold ----------------------------------------------------------


def _hold_read_lock(path, seconds):
    """Another program reading a rollback-journal file: its SHARED lock blocks the switch to WAL."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE IF NOT EXISTS t (x)")
    other.execute("BEGIN")
    other.execute("SELECT * FROM t").fetchall()
    release = threading.Timer(seconds, lambda: (other.execute("COMMIT"), other.close()))
    release.start()
    return release


def test_a_file_another_program_reads_is_opened_once_it_lets_go(tmp_path):
    path = tmp_path / "classroom.sqlite"
    release = _hold_read_lock(path, 0.3)
    db = Database(path)
    release.join()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.schema_version == SCHEMA_VERSION
    db.close()


def test_a_file_held_past_the_busy_timeout_is_one_clear_error_not_a_hang(tmp_path, monkeypatch):
    from kit.board import store

    monkeypatch.setattr(store, "BUSY_TIMEOUT", 0.2)
    path = tmp_path / "classroom.sqlite"
    release = _hold_read_lock(path, 3)
    try:
        with pytest.raises(UserError, match="not a usable classroom database: .*locked"):
            Database(path)
    finally:
        release.join()


@pytest.mark.parametrize("trial", range(3))
def test_many_openers_of_a_new_file_all_get_a_wal_store(tmp_path, trial):
    path = tmp_path / "classroom.sqlite"
    errors, names = [], [f"p{k}" for k in range(8)]
    barrier = threading.Barrier(len(names))

    def open_and_add(name):
        try:
            barrier.wait()
            database = Database(path)
            database.add_participant(name, START)
            database.close()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=open_and_add, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    database = Database(path)
    assert sorted(p["name"] for p in database.participants()) == names
    database.close()
