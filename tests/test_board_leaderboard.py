"""kit.board.leaderboard: a log that never loses a row, ranking, and the rendered pages."""
import itertools
import json
import math
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

import kit
from builders import make_competition, perfect_submission
from conftest import kit_cli, kit_cli_subprocess
from kit.board.identity import sanitize_participant
from kit.board.leaderboard import build_leaderboard
from kit.board.logfile import LOG_COLUMNS, append_entry, make_entry, read_log
from kit.board.ranking import rank
from kit.board.recording import record_result
from kit.scoring.metrics import get_metric

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


def entry(participant, public, private=None, minutes=0, model="gbm", file="s.csv"):
    bins = {"0.0-0.1": public, "0.9-1.0": public * 2}
    return {
        "time": (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z"),
        "participant": participant,
        "file": file,
        "sha256": f"{hash((participant, public, minutes)) & 0xFFFFFFFF:064x}",
        "model": model,
        "public": repr(public),
        "private": "" if private is None else repr(private),
        "validation": "",
        "rows": "100",
        "per_bin_public": json.dumps(bins),
        "per_bin_private": json.dumps(bins if private is not None else {}),
    }


@pytest.fixture
def comp_dir(tmp_path_factory):
    """A fresh competition (and so a fresh store) for each test."""
    return make_competition(tmp_path_factory.mktemp("data"), n_pairs=60, seed=5)


# --- the log -------------------------------------------------------------------------


def test_append_and_read_round_trip(tmp_path):
    log = tmp_path / "lb" / "practice.csv"
    append_entry(log, entry("ann", 0.2, 0.21))
    append_entry(log, entry("bob", 0.3, minutes=5))
    lines = log.read_text().splitlines()
    assert lines[0] == ",".join(LOG_COLUMNS) and len(lines) == 3
    frame = read_log(log)
    assert frame["participant"].tolist() == ["ann", "bob"]
    assert frame["public"].tolist() == [0.2, 0.3]
    assert frame["private"].iloc[0] == 0.21 and math.isnan(frame["private"].iloc[1])
    assert frame["per_bin_public"].iloc[0]["0.0-0.1"] == 0.2
    assert str(frame["time"].dt.tz) == "UTC"


def test_missing_log_reads_as_empty(tmp_path):
    assert read_log(tmp_path / "nothing.csv").empty


def test_torn_line_at_every_byte_is_skipped_and_next_row_is_intact(tmp_path):
    first, torn, after = entry("ann", 0.2), entry("bob", 0.3), entry("cy", 0.4)
    header = ",".join(LOG_COLUMNS) + "\n"
    from kit.board.logfile import _csv_line

    full = _csv_line([first[c] for c in LOG_COLUMNS])
    partial = _csv_line([torn[c] for c in LOG_COLUMNS])
    for cut in range(len(partial)):
        log = tmp_path / f"cut{cut}.csv"
        log.write_text(header + full + partial[:cut])  # a writer killed after `cut` bytes
        append_entry(log, after)
        frame = read_log(log)
        # Cut just before its newline, the row is complete: keeping it loses nothing.
        expected = ["ann", "bob", "cy"] if cut == len(partial) - 1 else ["ann", "cy"]
        assert frame["participant"].tolist() == expected, cut
        assert frame.attrs["skipped_lines"] <= 1


def test_torn_header_of_a_new_log(tmp_path):
    log = tmp_path / "new.csv"
    log.write_text(",".join(LOG_COLUMNS)[:7])
    append_entry(log, entry("ann", 0.2))
    assert read_log(log)["participant"].tolist() == ["ann"]


WRITER = """
import sys, itertools
sys.path.insert(0, {tests!r})
from test_board_leaderboard import entry
from kit.board.logfile import append_entry
for k in itertools.count():
    append_entry({log!r}, entry("w" + str(k % 7), 0.1 + k * 1e-6, 0.2, minutes=k))
"""


def test_writers_killed_at_random_moments_leave_a_parseable_log(tmp_path):
    log = tmp_path / "killed.csv"
    code = WRITER.format(tests=os.path.dirname(__file__), log=str(log))
    rng = np.random.default_rng(0)
    kills = 6
    for _ in range(kills):
        proc = subprocess.Popen([sys.executable, "-c", code])
        deadline = time.monotonic() + 20
        while (not log.exists() or log.stat().st_size < 2000) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(float(rng.uniform(0, 0.05)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    frame = read_log(log)
    assert len(frame) > 10
    assert frame.attrs["skipped_lines"] <= kills
    assert frame["public"].notna().all() and (frame["private"] == 0.2).all()
    assert frame["participant"].str.fullmatch(r"w\d").all()


@pytest.mark.slow
def test_sixteen_concurrent_scorers_add_sixteen_intact_rows(tmp_path, comp_dir):
    subs = [perfect_submission(comp_dir, tmp_path / f"s{k}.csv", noise=0.01 * (k + 1), seed=k) for k in range(16)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "kit", "score", str(s), "--competition", str(comp_dir), "--participant", f"p{k}",
             "--json"],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for k, s in enumerate(subs)
    ]
    outputs = [p.communicate(timeout=180) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
    log = tmp_path / "leaderboard" / "practice.csv"
    lines = log.read_text().splitlines()
    assert lines[0] == ",".join(LOG_COLUMNS) and len(lines) == 17
    frame = read_log(log)
    assert frame.attrs["skipped_lines"] == 0
    assert sorted(frame["participant"]) == sorted(f"p{k}" for k in range(16))
    scores = {json.loads(out)["public"] for out, _ in outputs}
    assert set(frame["public"]) == scores
    # The store has every one of them, at full precision in the teacher's export.
    full = read_log(comp_dir / "private" / "leaderboard.csv")
    assert sorted(full["participant"]) == sorted(frame["participant"])
    assert {round(v, 5) for v in full["public"]} == scores


# --- ranking -------------------------------------------------------------------------


def _frame(tmp_path, entries):
    log = tmp_path / "r.csv"
    for e in entries:
        append_entry(log, e)
    return read_log(log)


def test_best_public_per_participant_ties_to_earliest(tmp_path):
    log = _frame(tmp_path, [
        entry("ann", 0.30, 0.30, minutes=0),
        entry("bob", 0.20, 0.40, minutes=1),
        entry("ann", 0.20, 0.10, minutes=2),   # ties bob, but later
        entry("cy", 0.25, 0.20, minutes=3),
        entry("bob", 0.200001, 0.05, minutes=4),  # same at 5 decimals: not better
    ])
    ranking = rank(log, get_metric("rmse"))
    assert ranking["participant"].tolist() == ["bob", "ann", "cy"]
    assert ranking["rank"].tolist() == [1, 2, 3]
    assert ranking["entries"].tolist() == [2, 2, 1]
    assert ranking["public"].tolist() == [0.20, 0.20, 0.25]


def test_private_ranking_uses_each_best_public_submission(tmp_path):
    log = _frame(tmp_path, [
        entry("ann", 0.20, 0.30, minutes=0),
        entry("bob", 0.25, 0.22, minutes=1),
        entry("bob", 0.40, 0.01, minutes=2),  # best Private, but not bob's best Public
    ])
    final = rank(log, get_metric("rmse"), private=True)
    assert final["participant"].tolist() == ["bob", "ann"]
    assert final["private"].tolist() == [0.22, 0.30]
    assert final["public_rank"].tolist() == [2, 1]


def test_higher_is_better_metrics_rank_the_other_way(tmp_path):
    log = _frame(tmp_path, [entry("ann", 0.5), entry("bob", 0.9, minutes=1)])
    assert rank(log, get_metric("pearson"))["participant"].tolist() == ["bob", "ann"]


def test_sanitize_participant():
    assert sanitize_participant("../..") == "anonymous"
    assert sanitize_participant("a/b\\c") == "a_b_c"
    assert sanitize_participant("$\\frac{1}{0}$") == "frac_1_0"
    # Over-long names are never cut into another name: a readable start and a hash.
    long_a, long_b = sanitize_participant("x" * 100), sanitize_participant("x" * 99 + "y")
    assert len(long_a) == 40 and long_a.startswith("x" * 31 + "-") and long_a != long_b
    assert sanitize_participant("_hidden") == "hidden"

    # Names keep their spaces (any run of white space is one space).
    assert sanitize_participant("Alice Martin") == "Alice Martin"
    assert sanitize_participant(" Alice \t\n Martin\u00a0") == "Alice Martin"
    assert sanitize_participant("\u3000山田\u3000太郎") == "山田 太郎"
    assert sanitize_participant("O'Brien Sean") == "O_Brien Sean"
    assert sanitize_participant("Bob; rm -rf /") == "Bob_ rm -rf"
    # What renders as nothing goes: the name as it is seen (and so the person it looks like).
    assert sanitize_participant("Alice \u200b Martin") == "Alice Martin"
    assert sanitize_participant("Ali\u200dce\u202e") == "Alice"


#: Names written with spaces, accents and other scripts, and hostile ones that must stay escaped.
WRITTEN_NAMES = ["Alice Martin", "José  Pérez", "山田 太郎", "Ana María de la Cruz", "<b>Eve</b> Smith"]


def _names_everywhere(standings, lb):
    """Every export a name appears in: the terminal table, Markdown, HTML, and both CSV exports."""
    return {
        "terminal": standings.text,
        "markdown": standings.markdown_path.read_text(encoding="utf-8"),
        "html": standings.html_path.read_text(encoding="utf-8"),
        "csv": (lb / "practice.csv").read_text(encoding="utf-8"),
    }


def test_names_are_shown_as_written_in_every_export(tmp_path, comp_dir):
    lb = tmp_path / "lb"
    for k, who in enumerate(WRITTEN_NAMES):
        sub = perfect_submission(comp_dir, tmp_path / f"s{k}.csv", noise=0.1 + k / 100, seed=k)
        record_result(kit.score_submission(sub, comp_dir), participant=who, leaderboard=lb,
                      time=T0 + timedelta(hours=k))
    standings = build_leaderboard(comp_dir, leaderboard=lb)
    pages = _names_everywhere(standings, lb)
    for where, page in pages.items():
        for shown in ("Alice Martin", "José Pérez", "山田 太郎", "Ana María de la Cruz"):
            assert shown in page, (where, shown)
        assert "Alice_Martin" not in page and "Alice\\_Martin" not in page, where
        assert "<b>" not in page, where  # a name never carries markup into a page
    assert "b_Eve_b_ Smith" in pages["csv"]
    assert "b\\_Eve\\_b\\_ Smith" in pages["markdown"]
    assert set(standings.ranking["participant"]) == {sanitize_participant(n) for n in WRITTEN_NAMES}


def test_inbox_names_are_shown_as_written_and_the_private_table_too(tmp_path, comp_dir):
    from kit.board.inbox import process_inbox

    inbox, lb = tmp_path / "inbox", tmp_path / "lb"
    inbox.mkdir()
    perfect_submission(comp_dir, inbox / "Alice Martin__try1.csv", noise=0.1, seed=1)
    perfect_submission(comp_dir, inbox / "alice_martin__try2.csv", noise=0.05, seed=2)  # the same person
    perfect_submission(comp_dir, inbox / "Bo  Li__1.csv", noise=0.2, seed=3)
    report = process_inbox(comp_dir, inbox, leaderboard=lb)
    assert len(report.scored) == 3, report.rejected
    done = kit_cli("leaderboard", "--competition", comp_dir, "--leaderboard", lb, "--private", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    standings = build_leaderboard(comp_dir, leaderboard=lb, private=True)
    assert standings.ranking["participant"].tolist() == ["Alice Martin", "Bo Li"]
    for where, page in {"kit leaderboard --private": done.stdout, **_names_everywhere(standings, lb)}.items():
        assert "Alice Martin" in page and "Bo Li" in page, where
        assert "Alice_Martin" not in page and "Alice\\_Martin" not in page, where


# --- recording and rendering --------------------------------------------------------------


def test_record_result_uses_manifest_model_and_participant(tmp_path, comp_dir):
    comp = kit.load_competition(comp_dir)
    ids = comp.test_pairs["id"].to_numpy()
    path = kit.write_submission(comp, np.full(ids.size, 0.5), model="mean", participant="dee", out_dir=tmp_path)
    result = kit.score_submission(path, comp)
    record_result(result, leaderboard=tmp_path / "lb")
    row = read_log(tmp_path / "lb" / "practice.csv").iloc[0]
    assert row["participant"] == "dee" and row["model"] == "mean" and row["file"] == path.name
    # What others read: rounded, and no Private score before the reveal.
    assert row["public"] == round(result.public, 5) and math.isnan(row["private"])
    assert row["sha256"] == result.sha256 and row["rows"] == ids.size
    full = read_log(comp_dir / "private" / "leaderboard.csv").iloc[0]
    assert full["public"] == result.public and full["private"] == result.private


def test_make_entry_defaults_to_user(monkeypatch, tmp_path, comp_dir):
    monkeypatch.setenv("USER", "<b>eve</b>")
    result = kit.score_submission(perfect_submission(comp_dir, tmp_path / "p.csv"), comp_dir)
    assert make_entry(result)["participant"] == "b_eve_b"
    monkeypatch.delenv("USER")
    monkeypatch.delenv("USERNAME", raising=False)
    assert make_entry(result)["participant"] == "you"


def _filled(tmp_path, comp_dir):
    lb = tmp_path / "lb"
    for k, (who, noise) in enumerate([("ann", 0.1), ("bob", 0.2), ("ann", 0.05), ("cy", 0.3)]):
        sub = perfect_submission(comp_dir, tmp_path / f"{who}{k}.csv", noise=noise, seed=k)
        record_result(kit.score_submission(sub, comp_dir), participant=who, leaderboard=lb,
                      time=T0 + timedelta(hours=k))
    return lb


def test_pages_hide_private_until_revealed(tmp_path, comp_dir):
    lb = _filled(tmp_path, comp_dir)
    log = read_log(comp_dir / "private" / "leaderboard.csv")
    metric = get_metric("rmse")
    hidden = build_leaderboard(comp_dir, leaderboard=lb)
    assert hidden.ranking["participant"].tolist() == ["ann", "bob", "cy"]
    secret = {metric.format(v) for v in log["private"]} - {metric.format(v) for v in log["public"]}
    assert secret
    for text in (hidden.text, hidden.markdown_path.read_text(), hidden.html_path.read_text()):
        assert not any(value in text for value in secret)
    revealed = build_leaderboard(comp_dir, leaderboard=lb, private=True)
    assert all(p in revealed.text for p in {metric.format(v) for v in revealed.ranking["private"]})


def test_html_is_self_contained_with_two_plots(tmp_path, comp_dir):
    lb = _filled(tmp_path, comp_dir)
    page = build_leaderboard(comp_dir, leaderboard=lb).html_path.read_text()
    assert page.count('src="data:image/png;base64,') == 2
    assert "<script" not in page and "http://" not in page and "https://" not in page
    import base64

    png = page.split('src="data:image/png;base64,')[1].split('"')[0]
    assert base64.b64decode(png)[:8] == b"\x89PNG\r\n\x1a\n"


def test_model_and_file_names_are_escaped(tmp_path):
    lb = tmp_path / "lb"
    evil = "<script>alert('x')</script>|`**"
    append_entry(lb / "practice.csv", entry("ann", 0.2, model=evil, file=evil + ".csv"))
    standings = build_leaderboard("practice", leaderboard=lb)
    for page in (standings.markdown_path.read_text(), standings.html_path.read_text()):
        assert "<script" not in page
    assert "&lt;script&gt;" in standings.html_path.read_text()


def test_empty_leaderboard_is_not_an_error(tmp_path, comp_dir):
    standings = build_leaderboard(comp_dir, leaderboard=tmp_path / "lb")
    assert "No scored submissions yet" in standings.text
    assert standings.html_path.is_file()


def test_kit_leaderboard_command(tmp_path, comp_dir):
    _filled(tmp_path, comp_dir)
    # The command's one run in a child process (the installed entry point); the rest run in-process.
    done = kit_cli_subprocess("leaderboard", "--competition", comp_dir, "--leaderboard", "lb", cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    table = done.stdout
    assert table.index("ann") < table.index("bob") < table.index("cy")
    assert "private" not in table.split("\n\n")[1].splitlines()[0]
    assert (tmp_path / "lb" / "practice.md").is_file() and (tmp_path / "lb" / "practice.html").is_file()
    done = kit_cli("leaderboard", "--competition", comp_dir, "--leaderboard", "lb", "--private", "--no-pages",
                   cwd=tmp_path)
    assert done.returncode == 0 and "private" in done.stdout


def test_kit_leaderboard_unknown_competition_is_exit_2(tmp_path):
    done = kit_cli("leaderboard", "--competition", "nope", cwd=tmp_path)
    assert done.returncode == 2 and "not found" in done.stderr and "Traceback" not in done.stderr


def test_read_log_skips_garbage_lines(tmp_path):
    log = tmp_path / "g.csv"
    append_entry(log, entry("ann", 0.2))
    with open(log, "a") as handle:
        handle.write('garbage,"unclosed\n\x00\x01,2,3\n')
    append_entry(log, entry("bob", 0.3))
    frame = read_log(log)
    assert frame["participant"].tolist() == ["ann", "bob"] and frame.attrs["skipped_lines"] == 2
    assert isinstance(frame, pd.DataFrame)


# --- hostile text and non-finite scores ---------------------------------------------------


@pytest.mark.parametrize("column, value", [
    ("public", "nan"), ("public", "inf"), ("public", "-inf"), ("public", "1e999"), ("public", ""),
    ("public", "abc"), ("private", "nan"), ("private", "Infinity"), ("validation", "-1e999"),
])
def test_non_finite_scores_never_enter_the_log(tmp_path, column, value):
    row = entry("ann", 0.2, private=0.3)
    row[column] = value
    with pytest.raises(kit.UserError, match="finite number"):
        append_entry(tmp_path / "x.csv", row)
    assert not (tmp_path / "x.csv").exists()


def test_make_entry_leaves_a_non_finite_validation_score_empty():
    from kit.board.logfile import _number

    assert _number(math.inf) == "" and _number(math.nan) == "" and _number(None) == "" and _number(-0.5) == "-0.5"


@pytest.mark.parametrize("column, value", [
    ("public", "nan"), ("public", "inf"), ("public", "1e999"), ("public", "-inf"), ("private", "NaN"),
    ("private", "1e999"), ("validation", "inf"), ("per_bin_public", '{"0.0-0.1": NaN}'),
    ("per_bin_private", '{"0.0-0.1": 1e999}'), ("per_bin_public", '{"0.0-0.1": Infinity}'),
])
def test_hand_edited_non_finite_rows_are_skipped_with_a_note(tmp_path, comp_dir, column, value):
    from kit.board.logfile import _csv_line

    log = tmp_path / "lb" / "practice.csv"
    append_entry(log, entry("ann", 0.2, private=0.25))
    forged = entry("mallory", 0.01, private=0.01, minutes=1)
    forged[column] = value
    with open(log, "a") as handle:
        handle.write(_csv_line([forged[c] for c in LOG_COLUMNS]))
    frame = read_log(log)
    assert frame["participant"].tolist() == ["ann"]
    assert frame.attrs["skipped_nonfinite"] == 1 and frame.attrs["skipped_lines"] == 0
    standings = build_leaderboard(comp_dir, leaderboard=tmp_path / "lb", private=True)
    assert any("NaN or infinite" in note for note in standings.notes)
    assert "NaN or infinite" in standings.text
    assert "NaN or infinite" in standings.markdown_path.read_text()
    assert "NaN or infinite" in standings.html_path.read_text()


FORMULAS = ["=HYPERLINK(\"http://evil\",\"x\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "\t=1", "\r=1",
            " =1", "'=1"]


@pytest.mark.parametrize("text", FORMULAS)
def test_log_text_cells_are_neutralised_for_spreadsheets_and_read_back(tmp_path, text):
    import csv as csv_module

    from kit.safetext import printable, spreadsheet_cell

    log = tmp_path / "x.csv"
    row = entry("ann", 0.2, model=text, file=text)
    row["validation"] = "-0.25"  # a number, not text: never quoted
    append_entry(log, row)
    with open(log, newline="") as handle:
        cells = list(csv_module.DictReader(handle))[0]
    safe = spreadsheet_cell(printable(text))
    assert cells["model"] == safe and cells["file"] == safe
    assert safe.lstrip(" ")[:1] not in set("=+-@\t\r") or safe.startswith("'")
    assert cells["validation"] == "-0.25" and cells["public"] == "0.2"
    frame = read_log(log)
    shown = printable(text)  # a tab or CR is kept as a visible escape
    assert frame["model"].iloc[0] == shown and frame["file"].iloc[0] == shown
    assert frame["validation"].iloc[0] == -0.25


def test_exported_log_is_neutralised_too(tmp_path):
    from kit.board.logfile import log_text

    log = tmp_path / "e.csv"
    log.write_text(log_text([entry("ann", 0.2, model="=1+1"), entry("bob", 0.3, file="@x")]))
    text = log.read_text()
    assert ",'=1+1," in text and ",'@x," in text
    assert read_log(log)["model"].tolist() == ["=1+1", "gbm"]
    with pytest.raises(kit.UserError, match="finite"):
        log_text([entry("ann", math.inf)])


HOSTILE = ["\x1b[2J\x1b[31mred", "evil\u202eVSC.csv", "two\nlines", "nul\x00x", "bell\x07", "<b>x</b>|`y`"]


@pytest.mark.parametrize("text", HOSTILE)
def test_control_characters_never_reach_the_terminal_or_pages(tmp_path, comp_dir, text):
    from kit.board.logfile import _csv_line

    log = tmp_path / "lb" / "practice.csv"
    log.parent.mkdir()
    row = entry("ann", 0.2, model=text, file=text)
    # Hand-written, as a careless edit or another tool would: no cleaning on the way in.
    log.write_text(_csv_line(LOG_COLUMNS) + _csv_line([row[c] for c in LOG_COLUMNS]))
    standings = build_leaderboard(comp_dir, leaderboard=tmp_path / "lb", rejected=[(text + ".csv", f"bad {text}")])
    for page in (standings.text, standings.markdown_path.read_text(), standings.html_path.read_text()):
        for char in ("\x1b", "\u202e", "\x00", "\x07"):
            assert char not in page
        body = page.split("\n")
        assert not any(line.startswith("lines") for line in body)  # the newline did not split a row
    if "<b>" in text:
        assert "&lt;b&gt;x&lt;/b&gt;" in standings.html_path.read_text()
        assert "&lt;b&gt;x&lt;/b&gt;\\|\\`y\\`" in standings.markdown_path.read_text()


def test_pages_and_log_are_readable_by_others_under_the_umask(tmp_path, comp_dir):
    import stat

    old = os.umask(0o022)
    try:
        record = tmp_path / "lb" / "practice.csv"
        append_entry(record, entry("ann", 0.2))
        standings = build_leaderboard(comp_dir, leaderboard=tmp_path / "lb")
    finally:
        os.umask(old)
    for path in (record, standings.markdown_path, standings.html_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


# --- what the pages show -------------------------------------------------------------


def test_ties_go_to_the_earlier_submission_and_only_equal_times_share_a_rank(tmp_path):
    log_file = tmp_path / "practice.csv"
    for row in (entry("cy", 0.3, minutes=0), entry("bob", 0.2, minutes=5), entry("ann", 0.2, minutes=1),
                entry("dee", 0.1, minutes=9), entry("eve", 0.3, minutes=0)):
        append_entry(log_file, row)
    ranking = rank(read_log(log_file), get_metric("rmse"))
    assert ranking["participant"].tolist() == ["dee", "ann", "bob", "cy", "eve"]
    assert ranking["rank"].tolist() == [1, 2, 3, 4, 4]
    private = rank(read_log(log_file), get_metric("rmse"), private=True)
    assert private["rank"].is_monotonic_increasing and private["rank"].iloc[0] == 1
    standings = build_leaderboard("practice", leaderboard=tmp_path, write_pages=False)
    assert "ties go to the earlier submission" in standings.text


def test_all_submissions_table_shows_a_worse_new_score_newest_first(tmp_path):
    lb = tmp_path / "lb"
    for row in (entry("ann", 0.20, minutes=0, file="first.csv"), entry("ann", 0.35, minutes=10, file="worse.csv"),
                entry("bob", 0.30, minutes=5, file="b.csv")):
        append_entry(lb / "practice.csv", row)
    standings = build_leaderboard("practice", leaderboard=lb)
    assert "0.35000" not in standings.text  # the ranking keeps ann's best
    for page in (standings.markdown_path.read_text(), standings.html_path.read_text()):
        section = page[page.index("All submissions (3)"):]
        assert "0.35000" in section
        assert section.index("worse.csv") < section.index("first.csv") < section.index("b.csv")


def test_final_page_says_so_and_keeps_the_rejected_files(tmp_path):
    lb = tmp_path / "lb"
    append_entry(lb / "practice.csv", entry("ann", 0.2, 0.25))
    final = build_leaderboard("practice", leaderboard=lb, private=True, rejected=[("x__1.csv", "bad header")])
    page = final.html_path.read_text()
    assert "<title>practice leaderboard: Final standings</title>" in page
    assert "Rejected files (1)" in page and "bad header" in page
    assert "Rejected files (1)" in final.markdown_path.read_text()
    assert final.text.splitlines()[0] == "practice leaderboard: Final standings"


def test_long_names_are_kept_whole_in_the_table(tmp_path):
    lb = tmp_path / "lb"
    model = "siamese-with-a-very-long-descriptive-model-name-v12"
    append_entry(lb / "practice.csv", entry("a" * 40, 0.2, model=model))
    page = build_leaderboard("practice", leaderboard=lb).html_path.read_text()
    assert f'title="{model}"' in page
    assert "a" * 40 in page
    assert '<div class="scroll"><table>' in page and "@media (max-width:600px)" in page


def test_plot_legends_cut_long_names_visibly():
    from kit.board.pages import LEGEND_CHARS, _short

    assert _short("b" * 40) == "b" * (LEGEND_CHARS - 1) + "…"
    assert _short("ann") == "ann"


def test_participants_past_the_coloured_ones_are_drawn_in_grey(tmp_path, monkeypatch):
    from kit.board import pages

    lb = tmp_path / "lb"
    n = pages.MAX_PLOTTED + 3
    for i in range(n):
        append_entry(lb / "practice.csv", entry(f"p{i:02d}", 0.1 + i / 100, minutes=i))
    figures = []
    monkeypatch.setattr(pages, "_png", lambda fig: figures.append(fig) or "")
    pages._plots(build_leaderboard("practice", leaderboard=lb, write_pages=False))
    bins_axes = figures[1].axes[0]
    grey = [line for line in bins_axes.get_lines() if line.get_color() == pages.GREY]
    assert len(grey) == 3 and len(bins_axes.get_lines()) == n
    assert bins_axes.get_legend().get_title().get_text() == "+3 more in grey"


def test_building_pages_leaves_the_matplotlib_backend_alone(tmp_path):
    import matplotlib

    before = matplotlib.get_backend()
    append_entry(tmp_path / "practice.csv", entry("ann", 0.2))
    build_leaderboard("practice", leaderboard=tmp_path)
    assert matplotlib.get_backend() == before


def test_importing_the_kit_leaves_the_backend_and_warning_filters_alone():
    code = (
        "import warnings, matplotlib; filters = list(warnings.filters); backend = matplotlib.get_backend()\n"
        "import kit, kit.board.pages, kit.hosting.codabench, kit.data.spectra\n"
        "assert warnings.filters == filters, 'warning filters changed'\n"
        "assert matplotlib.get_backend() == backend, 'backend changed'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


# --- one store of record ---------------------------------------------------------------------


def _serve_once(comp_dir, lb, path=None, name="Sam"):
    """Start `kit serve`'s app on the competition (its start-up export runs), upload ``path`` as ``name``, stop."""
    pytest.importorskip("fastapi")
    import warnings

    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

    from kit.server.app import create_app

    app = create_app(comp_dir, leaderboard=lb, export_interval=0)
    with TestClient(app) as client:
        state = app.state.kit
        if path is not None:
            [(_, token)] = state.db.add_participants([name], datetime.now(timezone.utc))
            reply = client.post("/api/submissions", headers={"Authorization": f"Bearer {token}"},
                                files={"file": ("pred.csv", path.read_bytes(), "text/csv")})
            assert reply.status_code == 201, reply.text
        state.exporter.flush()
        board = client.get("/api/leaderboard").json()
    return {row["participant"] for row in board["rows"]}


def _write(step, comp_dir, tmp_path, lb, k):
    sub = perfect_submission(comp_dir, tmp_path / f"{step}{k}.csv", noise=0.05 * (k + 1), seed=k)
    if step == "score":
        assert kit_cli("score", sub, "--competition", comp_dir, "--participant", "Kim", "--leaderboard", lb,
                       cwd=tmp_path).returncode == 0
    elif step == "inbox":
        inbox = tmp_path / "inbox"
        inbox.mkdir(exist_ok=True)
        sub.rename(inbox / "Ivy__1.csv")
        done = kit_cli("leaderboard", "--competition", comp_dir, "--leaderboard", lb, "--inbox", inbox,
                       "--no-pages", cwd=tmp_path)
        assert done.returncode == 0 and "scored Ivy__1.csv" in done.stdout, done.stderr
    else:
        _serve_once(comp_dir, lb, sub)


@pytest.mark.parametrize("order", list(itertools.permutations(["score", "inbox", "serve"])))
def test_every_order_of_the_three_writers_keeps_every_row(tmp_path, comp_dir, order):
    lb = tmp_path / "lb"
    # A log written by an earlier version, before the store existed: its row is kept too.
    append_entry(lb / "practice.csv", entry("Old", 0.3, private=0.31))
    for k, step in enumerate(order):
        _write(step, comp_dir, tmp_path, lb, k)
    everyone = {"Old", "Kim", "Ivy", "Sam"}
    # A server started last rewrites the exports from the store: nothing dropped.
    assert _serve_once(comp_dir, lb) == everyone
    assert set(read_log(lb / "practice.csv")["participant"]) == everyone
    done = kit_cli("leaderboard", "--competition", comp_dir, "--leaderboard", lb, cwd=tmp_path)
    assert done.returncode == 0 and all(name in done.stdout for name in everyone)
    public, full = read_log(lb / "practice.csv"), read_log(comp_dir / "private" / "leaderboard.csv")
    assert len(public) == 4 == len(full)
    assert all(name in (lb / "practice.html").read_text() for name in everyone)
    # Hidden: no Private score in what others read; every one of them in the teacher's export.
    assert public["private"].isna().all() and (public["per_bin_private"].map(len) == 0).all()
    assert full["private"].notna().all() and 0.31 in set(full["private"])


def test_an_earlier_log_is_imported_once_and_an_exported_one_is_not_doubled(tmp_path, comp_dir):
    from kit.board.exports import store_entries
    from kit.board.recording import open_store

    lb = tmp_path / "lb"
    append_entry(lb / "practice.csv", entry("ann", 0.2, private=0.21))
    append_entry(lb / "practice.csv", entry("bob", 0.3, minutes=5))
    comp = kit.load_competition(comp_dir)
    for _ in range(3):
        build_leaderboard(comp, leaderboard=lb)
    db = open_store(comp, lb)
    rows = store_entries(db)
    db.close()
    assert [(r["participant"], r["public"], r["private"]) for r in rows] == [("ann", 0.2, 0.21), ("bob", 0.3, None)]
    # The exports of this store, copied into another leaderboard folder: the same rows, not new ones.
    other = tmp_path / "copy"
    other.mkdir()
    (other / "practice.csv").write_bytes((comp_dir / "private" / "leaderboard.csv").read_bytes())
    assert len(build_leaderboard(comp, leaderboard=other).log) == 2


def test_hidden_private_scores_are_in_no_file_others_can_read(tmp_path, comp_dir):
    from kit.board.recording import open_store

    lb = _filled(tmp_path, comp_dir)
    build_leaderboard(comp_dir, leaderboard=lb)
    full = read_log(comp_dir / "private" / "leaderboard.csv")
    secrets = {f"{v:.5f}" for v in full["private"]} | {repr(v) for v in full["private"]}
    for page in sorted(lb.iterdir()):
        text = page.read_text(errors="replace")
        assert not any(secret in text for secret in secrets), page
    assert read_log(lb / "practice.csv")["private"].isna().all()
    for private_file in (comp_dir / "private" / "leaderboard.csv", comp_dir / "private" / "classroom.sqlite"):
        assert private_file.stat().st_mode & 0o077 == 0
    # Once the store says revealed (`kit serve`'s reveal), the exports hold Private, rounded.
    db = open_store(kit.load_competition(comp_dir), lb)
    db.set_revealed()
    db.close()
    standings = build_leaderboard(comp_dir, leaderboard=lb)
    assert standings.private and read_log(lb / "practice.csv")["private"].notna().all()


def test_everything_others_see_is_rounded_and_ranks_use_the_rounded_scores(tmp_path, comp_dir):
    from kit.board.recording import open_store

    comp = kit.load_competition(comp_dir)
    db = open_store(comp, tmp_path / "lb")
    bins = {"0.0-0.1": 0.1234567891}
    # 0.123454 and 0.123446 are both 0.12345 as shown: a tie, won by the earlier one.
    for who, public, minutes in [("ann", 0.123454, 5), ("bob", 0.123446, 0)]:
        db.record({"participant": who, "time": T0 + timedelta(minutes=minutes), "sha256": who, "public": public,
                   "private": 0.2222222222, "rows": 60, "per_bin_public": bins, "per_bin_private": bins}, "score")
    db.close()
    standings = build_leaderboard(comp, leaderboard=tmp_path / "lb")
    assert standings.ranking["participant"].tolist() == ["bob", "ann"]
    assert standings.ranking["rank"].tolist() == [1, 2]
    csv_text = (tmp_path / "lb" / "practice.csv").read_text()
    assert "0.12345," in csv_text and "0.123454" not in csv_text and "0.1234567891" not in csv_text
    assert "0.1234567891" in (comp_dir / "private" / "leaderboard.csv").read_text()
    assert "0.12345" in standings.text and "0.123454" not in standings.markdown_path.read_text()
    private = build_leaderboard(comp, leaderboard=tmp_path / "lb", private=True)
    assert "0.22222" in private.text and "0.2222222" not in (tmp_path / "lb" / "practice.csv").read_text()


def test_threads_and_processes_storing_at_once_lose_no_row(tmp_path, comp_dir):
    import threading

    lb = tmp_path / "lb"
    comp = kit.load_competition(comp_dir)
    results = [kit.score_submission(perfect_submission(comp_dir, tmp_path / f"t{k}.csv", noise=0.01 * (k + 1), seed=k),
                                    comp) for k in range(12)]
    errors = []

    def work(k):
        try:
            record_result(results[k], participant=f"t{k}", leaderboard=lb)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    assert sorted(read_log(lb / "practice.csv")["participant"]) == sorted(f"t{k}" for k in range(12))


# --- the reveal, imports, refusals and number format ---------------------------------------


def _store(comp_dir):
    from kit.board.store import Database

    return Database(comp_dir / "private" / "classroom.sqlite")


def _scored(comp_dir, tmp_path, name="s.csv", noise=0.1, seed=0):
    return kit.score_submission(perfect_submission(comp_dir, tmp_path / name, noise=noise, seed=seed),
                                kit.load_competition(comp_dir))


def test_private_is_the_teachers_reveal_and_closes_submissions(tmp_path, comp_dir, capsys):
    from kit.cli import main

    lb = tmp_path / "lb"
    record_result(_scored(comp_dir, tmp_path), participant="ann", leaderboard=lb)
    common = ["--competition", str(comp_dir), "--leaderboard", str(lb)]
    assert main(["leaderboard", *common]) == 0
    assert read_log(lb / "practice.csv")["private"].isna().all()
    assert main(["leaderboard", *common, "--private"]) == 0
    out = capsys.readouterr().out
    assert out.count("Revealed the final ranking") == 1 and "--hide-private" in out
    db = _store(comp_dir)
    assert db.revealed
    db.close()
    assert read_log(lb / "practice.csv")["private"].notna().all()
    # Every later view says revealed (no second "Revealed" line); recording is refused.
    assert main(["leaderboard", *common]) == 0
    assert "Revealed the final ranking" not in capsys.readouterr().out
    with pytest.raises(kit.errors.UserError, match="the final ranking is revealed; submissions are closed"):
        record_result(_scored(comp_dir, tmp_path, "t.csv", seed=1), participant="bob", leaderboard=lb)
    # The undo re-opens, and the public export hides Private again.
    assert main(["leaderboard", *common, "--hide-private"]) == 0
    assert "hidden again" in capsys.readouterr().out
    assert read_log(lb / "practice.csv")["private"].isna().all()
    record_result(_scored(comp_dir, tmp_path, "t.csv", seed=1), participant="bob", leaderboard=lb)


def test_private_and_hide_private_together_are_one_line(tmp_path, comp_dir, capsys):
    from kit.cli import main

    assert main(["leaderboard", "--competition", str(comp_dir), "--private", "--hide-private"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_build_leaderboard_private_reveals_in_the_store(tmp_path, comp_dir):
    lb = tmp_path / "lb"
    record_result(_scored(comp_dir, tmp_path), participant="ann", leaderboard=lb)
    standings = build_leaderboard(comp_dir, leaderboard=lb, private=True)
    assert standings.revealed_now and standings.private
    assert not build_leaderboard(comp_dir, leaderboard=lb, private=True).revealed_now
    db = _store(comp_dir)
    assert db.revealed
    db.close()


@pytest.mark.parametrize("rule, message", [
    ("revealed", "the final ranking is revealed; submissions are closed"),
    ("deadline", "after the deadline"),
    ("date deadline", "after the deadline"),
    ("revoked", "revoked"),
])
def test_kit_score_prints_the_score_and_refuses_to_record_in_a_closed_classroom(tmp_path, comp_dir, monkeypatch,
                                                                                 capsys, rule, message):
    from kit.cli import main

    monkeypatch.chdir(tmp_path)
    meta = json.loads((comp_dir / "competition.json").read_text())
    if rule == "deadline":
        meta["deadline"] = "2020-01-01T00:00:00+01:00"
    elif rule == "date deadline":
        meta["deadline"] = "2020-01-01"
    (comp_dir / "competition.json").write_text(json.dumps(meta))
    db = _store(comp_dir)
    if rule == "revealed":
        db.set_revealed(True)
    elif rule == "revoked":
        db.add_participant("fixboard", T0)
        db.revoke_participant("FIXBOARD", T0)
    db.close()
    path = perfect_submission(comp_dir, tmp_path / "s.csv", noise=0.1)
    for extra in ([], ["--json"]):
        assert main(["score", str(path), "--competition", str(comp_dir), "--participant", "fixboard", *extra]) == 0
        captured = capsys.readouterr()
        assert "0." in captured.out and "Logged to" not in captured.out
        assert captured.err.count("not logged") == 1 and message in captured.err
        if extra:
            assert json.loads(captured.out)["logged"] is False
    db = _store(comp_dir)
    assert db.submissions() == []
    db.close()


@pytest.mark.parametrize("forged_folder", ["lbforge", "lb"])
def test_a_csv_in_a_leaderboard_folder_never_becomes_a_ranked_row(tmp_path, comp_dir, forged_folder):
    """Once a store is in use, a CSV in this folder or a new one is an export: never read back."""
    lb = tmp_path / "lb"
    record_result(_scored(comp_dir, tmp_path), participant="ann", leaderboard=lb)
    forged = tmp_path / forged_folder / "practice.csv"
    forged.parent.mkdir(exist_ok=True)
    forged.write_text(",".join(LOG_COLUMNS) + "\n" + _line(entry("mallory", 0.00001)))
    standings = build_leaderboard(comp_dir, leaderboard=tmp_path / forged_folder)
    assert standings.ranking["participant"].tolist() == ["ann"]
    db = _store(comp_dir)
    assert [s["participant"] for s in db.submissions()] == ["ann"]
    db.close()


def test_a_store_that_saw_no_log_never_imports_a_later_one(tmp_path, comp_dir):
    build_leaderboard(comp_dir, leaderboard=tmp_path / "lb")  # a new store, nothing to import
    forged = tmp_path / "lb2" / "practice.csv"
    append_entry(forged, entry("mallory", 0.00001))
    assert build_leaderboard(comp_dir, leaderboard=tmp_path / "lb2").ranking.empty


def test_import_log_is_the_teachers_explicit_import_once_per_file(tmp_path, comp_dir, capsys):
    from kit.cli import main

    lb = tmp_path / "lb"
    record_result(_scored(comp_dir, tmp_path), participant="ann", leaderboard=lb)
    old = tmp_path / "old.csv"
    append_entry(old, entry("bob", 0.3))
    common = ["--competition", str(comp_dir), "--leaderboard", str(lb), "--no-pages"]
    assert main(["leaderboard", *common, "--import-log", str(old)]) == 0
    assert "Imported 1 row(s)" in capsys.readouterr().out
    assert main(["leaderboard", *common, "--import-log", str(old)]) == 0
    assert "imported before; nothing added" in capsys.readouterr().out
    db = _store(comp_dir)
    assert sorted((s["participant"], s["source"]) for s in db.submissions()) == [("ann", "score"), ("bob", "log")]
    db.close()
    assert main(["leaderboard", *common, "--import-log", str(tmp_path / "missing.csv")]) == 2


def _line(row):
    from kit.board.logfile import _log_line

    return _log_line(row)


@pytest.mark.parametrize("score, text", [(1e-05, "0.00001"), (1.5e-06, "0.00000"), (123.456789, "123.45679"),
                                         (0.1, "0.10000"), (-2e-05, "-0.00002")])
def test_the_public_csv_writes_fixed_decimals(tmp_path, comp_dir, score, text):
    db = _store(comp_dir)
    db.record({"participant": "ann", "time": T0, "sha256": "a" * 64, "public": score, "private": score,
               "rows": 60, "per_bin_public": {"0.0-0.1": score}, "per_bin_private": {"0.0-0.1": score}}, "score")
    db.set_revealed(True)
    db.close()
    build_leaderboard(comp_dir, leaderboard=tmp_path / "lb")
    public = (tmp_path / "lb" / "practice.csv").read_text()
    assert "e-0" not in public and "e+" not in public
    row = public.splitlines()[1]
    assert f",{text},{text}," in row and f'""0.0-0.1"":{text}' in row
    assert read_log(tmp_path / "lb" / "practice.csv")["public"].iloc[0] == float(text)


def test_a_store_made_by_kit_participants_never_imports_a_csv_found_later(tmp_path, comp_dir, capsys):
    from kit.cli import main

    assert main(["participants", "add", "Ann", "--competition", str(comp_dir)]) == 0
    forged = tmp_path / "lbforge" / "practice.csv"
    append_entry(forged, entry("mallory", 0.00001))
    assert build_leaderboard(comp_dir, leaderboard=forged.parent).ranking.empty


# --- the time axis of the history plot ---------------------------------------------------

CLOCK = r"\d{2}:\d{2}(:\d{2})?"
DAY = r"[A-Z][a-z]{2} \d{2}"
MONTH = r"([A-Z][a-z]{2} )?\d{4}"


def _history_ticks(tmp_path, span_minutes, count=9):
    from kit.board import pages

    for i in range(count):
        append_entry(tmp_path / "practice.csv",
                     entry(f"p{i % 3}", 0.3 - i / 100, minutes=span_minutes * i / (count - 1)))
    fig = pages.history_figure(build_leaderboard("practice", leaderboard=tmp_path, write_pages=False))
    return pages.time_tick_labels(fig.axes[0])


def test_forty_minutes_of_submissions_have_clock_ticks_and_the_date_beside_them(tmp_path):
    labels, offset = _history_ticks(tmp_path, 40)
    assert labels == ["12:00", "12:10", "12:20", "12:30", "12:40"]
    assert offset == "2025-03-01"


@pytest.mark.parametrize("span_minutes, pattern", [
    (0.75, CLOCK),               # 45 seconds: clock times with seconds, never "15", "30", "45"
    (40, CLOCK),
    (30 * 60, f"{CLOCK}|{DAY}"),  # past midnight: the new day's tick is its date
    (4 * 24 * 60, DAY),
    (20 * 24 * 60, DAY),
    (400 * 24 * 60, MONTH),
])
def test_time_ticks_are_times_or_dates_never_bare_numbers(tmp_path, span_minutes, pattern):
    import re

    labels, offset = _history_ticks(tmp_path, span_minutes)
    assert len(labels) >= 3
    assert all(re.fullmatch(pattern, label) for label in labels), labels
    assert not any(re.fullmatch(r"\d{1,2}(\.\d*)?", label) for label in labels), labels


def test_several_days_of_submissions_have_date_ticks(tmp_path):
    labels, _ = _history_ticks(tmp_path, 4 * 24 * 60)
    assert labels == ["Mar 02", "Mar 03", "Mar 04", "Mar 05"]


def test_one_instant_still_gets_a_clock_axis(tmp_path):
    labels, offset = _history_ticks(tmp_path, 0, count=2)
    assert labels and all(":" in label for label in labels) and offset == "2025-03-01"
