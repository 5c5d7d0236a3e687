"""kit.scoring.scorer, kit.scoring.reader and ``kit score``: the leaderboard's metric, and bad files never hurt."""
import hashlib
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import root_mean_squared_error

import kit
from builders import make_competition, perfect_submission, read_solution, write_submission_file
from conftest import kit_cli, kit_cli_subprocess
from kit.board.logfile import read_log
from kit.cli import main
from kit.data.tanimoto_bins import BIN_LABELS
from kit.errors import SubmissionError
from kit.scoring.reader import read_submission
from kit.scoring.scorer import score_submission

N = 50


@pytest.fixture(scope="module")
def comp_dir(tmp_path_factory):
    return make_competition(tmp_path_factory.mktemp("data"), n_pairs=N, seed=3)


@pytest.fixture(scope="module")
def solution(comp_dir):
    return read_solution(comp_dir)


# --- the metric is exactly the leaderboard's -----------------------------------------------

values = st.floats(min_value=-0.5, max_value=1.5, allow_nan=False, allow_infinity=False)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    predictions=st.lists(values, min_size=N, max_size=N),
    order=st.permutations(range(N)),
    quote_ids=st.booleans(),
    spaces=st.sampled_from(["", " ", "  ", "\t"]),
    crlf=st.booleans(),
)
def test_score_equals_sklearn_per_usage(tmp_path, comp_dir, solution, predictions, order, quote_ids, spaces, crlf):
    ids, truth, usage = solution
    predicted = np.array(predictions)
    lines = ["id,similarity"]
    for k in order:
        id_text = f'"{ids[k]}"' if quote_ids else str(ids[k])
        lines.append(f"{spaces}{id_text}{spaces},{spaces}{float(predicted[k])!r}{spaces}")
    path = tmp_path / "sub.csv"
    path.write_bytes(("\r\n" if crlf else "\n").join(lines).encode() + b"\n")

    result = score_submission(path, comp_dir)

    for name, score in (("Public", result.public), ("Private", result.private)):
        mask = usage == name
        expected = root_mean_squared_error(truth[mask], predicted[mask])
        assert abs(score - expected) <= 1e-12
    assert result.rows == N


def test_row_order_and_id_spelling_do_not_change_the_score(tmp_path, comp_dir, solution):
    ids, truth, _ = solution
    pred = np.clip(truth + 0.1, 0, 1)
    a = write_submission_file(tmp_path / "a.csv", ids, [float(v) for v in pred])
    b = write_submission_file(tmp_path / "b.csv", [f'"{i}"' for i in ids[::-1]], [f" {float(v)!r} " for v in pred[::-1]])
    assert score_submission(a, comp_dir).public == score_submission(b, comp_dir).public


def test_result_object_and_json(tmp_path, comp_dir, solution):
    path = perfect_submission(comp_dir, tmp_path / "p.csv", noise=0.05)
    result = kit.score_submission(path, comp_dir)
    assert result.public > 0 and result.private > 0
    assert set(result.per_bin_rmse) == set(BIN_LABELS)
    assert len(result.per_bin_rmse) == 10
    assert result.binned_rmse > 0 and result.mae > 0 and 0 < result.pearson <= 1
    public = result.to_dict()
    assert "private" not in public
    assert {"public", "binned_rmse", "per_bin_rmse", "mae", "pearson", "rows"} <= set(public)
    assert json.loads(json.dumps(result.to_dict(private=True)))["private"] == result.private


def test_perfect_submission_scores_zero(tmp_path, comp_dir):
    result = score_submission(perfect_submission(comp_dir, tmp_path / "p.csv"), comp_dir)
    assert result.public == 0.0 and result.private == 0.0 and result.binned_rmse == 0.0


def test_values_outside_unit_interval_are_scored_with_a_warning(tmp_path, comp_dir, solution):
    ids, truth, _ = solution
    path = write_submission_file(tmp_path / "s.csv", ids, [float(v) for v in truth + 2.0])
    result = score_submission(path, comp_dir)
    assert result.public == pytest.approx(2.0)
    assert result.warnings and "outside [0, 1]" in result.warnings[0]


def test_submission_error_is_a_value_error():
    assert issubclass(kit.SubmissionError, ValueError)


# --- bad submissions --------------------------------------------------------------------


def _valid_lines(solution):
    ids, truth, _ = solution
    return ["id,similarity"] + [f"{i},{float(t)!r}" for i, t in zip(ids, truth)]


def _text(lines):
    return ("\n".join(lines) + "\n").encode()


BAD = {
    # name: (bytes builder from the valid lines, words the message must contain)
    "empty": (lambda ls: b"", "is empty"),
    "header only": (lambda ls: b"id,similarity\n", "no rows"),
    "wrong columns": (lambda ls: _text(["id,prediction"] + ls[1:]), "wrong header"),
    "extra column": (lambda ls: _text(["id,similarity,x"] + [line + ",1" for line in ls[1:]]), "extra column"),
    "saved index": (lambda ls: _text([",id,similarity"] + [f"{k},{line}" for k, line in enumerate(ls[1:])]), "index"),
    "no header": (lambda ls: _text(ls[1:]), "no header"),
    "BOM": (lambda ls: b"\xef\xbb\xbf" + _text(ls), "byte-order mark"),
    "UTF-16": (lambda ls: "\n".join(ls).encode("utf-16"), "byte-order mark"),
    "semicolons": (lambda ls: _text([line.replace(",", ";") for line in ls]), "';' as the separator"),
    "decimal comma": (lambda ls: _text(ls[:3] + [ls[3].replace(".", ",")] + ls[4:]), "line 4: 3 fields"),
    "float ids": (lambda ls: _text([ls[0]] + [line.replace(",", ".0,", 1) for line in ls[1:]]), "line 2: id '0.0'"),
    "exponent id": (lambda ls: _text(ls[:5] + ["1e1,0.5"] + ls[5:10] + ls[11:]), "line 6: id '1e1'"),
    "duplicate id": (lambda ls: _text(ls[:-1] + [ls[1]]), "duplicate ids: expected each id once"),
    "unknown id": (lambda ls: _text(ls[:-1] + ["999999,0.5"]), "unknown ids"),
    "negative id": (lambda ls: _text(ls[:-1] + ["-1,0.5"]), "unknown ids"),
    "missing id": (lambda ls: _text(ls[:-1]), "missing ids"),
    "NaN": (lambda ls: _text(ls[:7] + ["6,nan"] + ls[8:]), "line 8: 'nan'"),
    "empty value": (lambda ls: _text(ls[:7] + ["6,"] + ls[8:]), "line 8: empty value"),
    "inf": (lambda ls: _text(ls[:2] + ["1,inf"] + ls[3:]), "finite number"),
    "text value": (lambda ls: _text(ls[:2] + ["1,high"] + ls[3:]), "line 3: 'high' is not a number"),
    "one field": (lambda ls: _text(ls[:2] + ["1"] + ls[3:]), "line 3: 1 field"),
    "binary": (lambda ls: bytes(range(256)) * 8, "binary"),
    "latin-1": (lambda ls: _text(ls) + "1,é".encode("latin-1"), "not UTF-8"),
    "open quote": (lambda ls: _text(ls[:2] + ['1,"0.5'] + ls[3:]), "line 3"),
    "huge": (lambda ls: b"id,similarity\n" + b"0,0.5\n" * (50 * 2**20 // 6), "too large"),
    # A field past the csv module's 131,072 characters, then a repeated id: the message
    # quotes lines, which once meant reading them again with csv (a traceback).
    "huge field, repeated id": (lambda ls: _text([ls[0], ls[1] + " " * 131_073] + ls[2:] + [ls[2]]), "id 1 on lines 3 and 52"),
    "unit separator": (lambda ls: _text(ls[:2] + ["1,0.5\x1f"] + ls[3:]), "control character 0x1f on line 3"),
    "other digits": (
        lambda ls: _text(ls[:2] + ["1,\u0661\u066b\u0665"] + ls[3:]),
        "line 3: '\u0661\u066b\u0665' is not a number",
    ),
    "underscore": (lambda ls: _text(ls[:2] + ["1,1_0"] + ls[3:]), "line 3: '1_0' is not a number"),
    "hexadecimal": (lambda ls: _text(ls[:2] + ["1,0x1p-3"] + ls[3:]), "line 3: '0x1p-3' is not a number"),
    "overflow": (lambda ls: _text(ls[:2] + ["1,1e999"] + ls[3:]), "line 3: '1e999' overflows"),
    "quoted newline": (lambda ls: _text(ls[:2] + ['1,"0.5', '"'] + ls[3:]), "quotes must close on the line they open"),
}


def _make_bad(tmp_path, solution, name):
    build, _ = BAD[name]
    path = tmp_path / "bad.csv"
    path.write_bytes(build(_valid_lines(solution)))
    return path


@pytest.mark.parametrize("name", list(BAD))
def test_bad_submission_is_one_clear_error(tmp_path, comp_dir, solution, name):
    path = _make_bad(tmp_path, solution, name)
    with pytest.raises(SubmissionError) as info:
        score_submission(path, comp_dir)
    message = str(info.value)
    assert BAD[name][1] in message
    assert "\n" not in message and len(message) < 600


def _bad_path(tmp_path, solution, name):
    if name == "not found":
        return tmp_path / "missing.csv", "file not found"
    if name == "a directory":
        return tmp_path, "is a folder"
    return _make_bad(tmp_path, solution, name), BAD[name][1]


@pytest.mark.parametrize("name", ["not found", "a directory"] + list(BAD))
def test_kit_score_refuses_bad_files_without_traceback_or_log(tmp_path, comp_dir, solution, name, capsys):
    path, words = _bad_path(tmp_path, solution, name)
    code = main(["score", str(path), "--competition", str(comp_dir), "--leaderboard", str(tmp_path / "lb")])
    out, err = capsys.readouterr()
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kit score: error:") and words in lines[0]
    assert "Traceback" not in err and out == ""
    assert not (tmp_path / "lb").exists()


@pytest.mark.parametrize("name", ["not found", "a directory", "BOM", "binary", "duplicate id", "huge"])
def test_real_command_exits_2_with_one_line(tmp_path, comp_dir, solution, name):
    path, words = _bad_path(tmp_path, solution, name)
    done = kit_cli("score", path, "--competition", comp_dir, "--leaderboard", tmp_path / "lb", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and done.stdout == ""
    assert not (tmp_path / "lb").exists()


def test_messages_quote_the_first_offending_lines(tmp_path, comp_dir, solution):
    lines = _valid_lines(solution)
    lines[3] = "2,abc"
    lines[9] = "8,xyz"
    path = tmp_path / "s.csv"
    path.write_bytes(_text(lines))
    with pytest.raises(SubmissionError, match=r"line 4: 'abc' is not a number; line 10: 'xyz'"):
        score_submission(path, comp_dir)


def test_duplicate_message_names_the_lines(tmp_path, comp_dir, solution):
    lines = _valid_lines(solution)
    path = tmp_path / "s.csv"
    path.write_bytes(_text(lines[:-1] + [lines[2]]))
    with pytest.raises(SubmissionError, match=r"id 1 on lines 3 and 51"):
        score_submission(path, comp_dir)


# --- fuzzing: never a traceback, never a leaderboard write ------------------------------


def _run_cli(args):
    """Exit code of the command run in this process (stderr captured by pytest)."""
    try:
        return main([str(a) for a in args])
    except SystemExit as exc:  # argparse
        return exc.code


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=3000))
def test_fuzz_random_bytes(tmp_path, comp_dir, data):
    path = tmp_path / "fuzz.csv"
    path.write_bytes(data)
    log = tmp_path / "lb" / "practice.csv"
    before = log.read_bytes() if log.exists() else b""
    code = _run_cli(["score", path, "--competition", comp_dir, "--leaderboard", tmp_path / "lb", "--json"])
    assert code == 2
    assert (log.read_bytes() if log.exists() else b"") == before


mutation = st.tuples(
    st.sampled_from(["replace", "insert", "delete", "swap_lines", "dup_line", "truncate"]),
    st.integers(min_value=0, max_value=10_000),
    st.binary(min_size=1, max_size=4),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutations=st.lists(mutation, min_size=1, max_size=4))
def test_fuzz_mutated_valid_files(tmp_path, comp_dir, solution, mutations):
    data = bytearray(_text(_valid_lines(solution)))
    for kind, at, chunk in mutations:
        at %= max(len(data), 1)
        if kind == "replace":
            data[at : at + len(chunk)] = chunk
        elif kind == "insert":
            data[at:at] = chunk
        elif kind == "delete":
            del data[at : at + len(chunk)]
        elif kind == "truncate":
            del data[at:]
        else:
            lines = bytes(data).split(b"\n")
            i, j = at % len(lines), (at * 7 + 1) % len(lines)
            if kind == "swap_lines":
                lines[i], lines[j] = lines[j], lines[i]
            else:
                lines.insert(j, lines[i])
            data = bytearray(b"\n".join(lines))
    path = tmp_path / "fuzz.csv"
    path.write_bytes(bytes(data))
    log = tmp_path / "lb" / "practice.csv"
    rows_before = len(log.read_bytes().splitlines()) if log.exists() else 0
    # Hypothesis reuses tmp_path: a mutation may rebuild content scored by an earlier example.
    seen = hashlib.sha256(bytes(data)).hexdigest() in set(read_log(log)["sha256"])
    code = _run_cli(["score", path, "--competition", comp_dir, "--leaderboard", tmp_path / "lb", "--json"])
    assert code in (0, 2)
    rows_after = len(log.read_bytes().splitlines()) if log.exists() else 0
    # A valid file adds one row (plus the header the first time), unless that content was
    # already logged for the participant; an invalid one adds nothing.
    if code == 0:
        assert rows_after == (rows_before if seen else max(rows_before, 1) + 1)
        read_submission(path, expected_ids=solution[0])  # and it really is valid
    else:
        assert rows_after == rows_before


# --- the command ------------------------------------------------------------------------


def test_kit_score_prints_public_and_logs_one_row(tmp_path):
    comp_dir = make_competition(tmp_path / "data", n_pairs=N, seed=3)  # its own store: one row in it
    path = perfect_submission(comp_dir, tmp_path / "p.csv", noise=0.1)
    # The command's one run in a child process (the installed entry point); the rest run in-process.
    done = kit_cli_subprocess("score", path, "--competition", comp_dir, "--participant", "ann", cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Public score:" in done.stdout and "Private" not in done.stdout
    assert "binned RMSE" in done.stdout and "Pearson r" in done.stdout and "0.9-1.0" in done.stdout
    log = (tmp_path / "leaderboard" / "practice.csv").read_text().splitlines()
    assert len(log) == 2 and log[1].split(",")[1] == "ann"


def test_kit_score_json_with_private(tmp_path, comp_dir, solution):
    path = perfect_submission(comp_dir, tmp_path / "p.csv", noise=0.1)
    done = kit_cli("score", path, "--competition", comp_dir, "--json", "--private", "--no-log", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    ids, truth, usage = solution
    assert {"public", "private", "binned_rmse", "per_bin_rmse", "mae", "pearson", "rows"} <= set(out)
    assert out["rows"] == N and math.isfinite(out["private"])
    assert not (tmp_path / "leaderboard").exists()


def test_kit_score_without_solution_says_so(tmp_path, comp_dir):
    import shutil

    learner = tmp_path / "learner"
    shutil.copytree(comp_dir, learner, ignore=shutil.ignore_patterns("private"))
    path = perfect_submission(comp_dir, tmp_path / "p.csv")
    done = kit_cli("score", path, "--competition", learner, cwd=tmp_path)
    assert done.returncode == 2 and "private" in done.stderr and "Traceback" not in done.stderr


def test_scoring_does_not_import_heavy_packages(tmp_path, comp_dir):
    path = perfect_submission(comp_dir, tmp_path / "p.csv")
    code = (
        "import sys\nfrom kit.cli import main\n"
        f"assert main(['score', {str(path)!r}, '--competition', {str(comp_dir)!r}, '--no-log']) == 0\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'kaggle', 'matchms', 'rdkit', 'torch', 'sklearn') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout


# --- finite scores ----------------------------------------------------------------------


@pytest.mark.parametrize("values", [("1e308",), ("-1e308",), ("1.7e308", "-1.7e308"), ("1e308", "1e308", "-1e308")])
def test_overflowing_values_are_refused_and_nothing_is_logged(tmp_path, comp_dir, solution, values, capsys):
    lines = _valid_lines(solution)
    for k, value in enumerate(values):
        row_id = lines[k + 1].split(",")[0]
        lines[k + 1] = f"{row_id},{value}"
    path = tmp_path / "huge.csv"
    path.write_bytes(_text(lines))
    capsys.readouterr()
    assert _run_cli(["score", path, "--competition", comp_dir, "--leaderboard", tmp_path / "lb"]) == 2
    err = capsys.readouterr().err
    assert "[-1e6, 1e6]" in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "lb" / "practice.csv").exists()


def test_a_non_finite_score_is_never_returned(monkeypatch, tmp_path, comp_dir):
    from kit.scoring import scorer as scoring

    path = perfect_submission(comp_dir, tmp_path / "p.csv", noise=0.1)
    monkeypatch.setattr(scoring, "diagnostics", lambda truth, guess: {"rmse": math.inf})
    with pytest.raises(kit.UserError, match="not a finite number"):
        score_submission(path, comp_dir)


def test_scoring_writes_no_leaderboard(tmp_path, comp_dir, monkeypatch):
    import inspect

    monkeypatch.chdir(tmp_path)
    assert "record" not in inspect.signature(score_submission).parameters
    score_submission(perfect_submission(comp_dir, tmp_path / "p.csv", noise=0.1), comp_dir)
    assert not (tmp_path / "leaderboard").exists()


def test_report_shows_control_characters_in_the_file_name_as_escapes(tmp_path, comp_dir):
    path = perfect_submission(comp_dir, tmp_path / "evil\x1b[2J\u202e.csv", noise=0.1)
    report = score_submission(path, comp_dir).format()
    assert "\x1b" not in report and "\u202e" not in report and "\\x1b[2J\\u202e" in report


@pytest.mark.parametrize(
    "low, high, shown",
    [
        (-1.23456789e-05, 1.0, "(min -0.00001, max 1.00000)"),
        (0.0, 1.000004999, "(min 0.00000, max 1.00000)"),
        (-0.5, 1.23456789, "(min -0.50000, max 1.23457)"),
        (-1e6, 1e6, "(min -1000000.00000, max 1000000.00000)"),
    ],
)
def test_the_range_warning_shows_values_to_five_decimals(tmp_path, comp_dir, solution, capsys, low, high, shown):
    ids, truth, _ = solution
    values = [float(v) for v in truth]
    values[0], values[1] = low, high
    path = write_submission_file(tmp_path / "s.csv", ids, values)
    assert shown in score_submission(path, comp_dir).warnings[0]
    assert main(["score", str(path), "--competition", str(comp_dir), "--no-log"]) == 0
    err = capsys.readouterr().err
    assert f"are outside [0, 1] {shown}" in err or f"is outside [0, 1] {shown}" in err
    assert "e-0" not in err


def test_pearson_r_is_shown_to_five_decimals_as_in_json(tmp_path, comp_dir, capsys):
    path = perfect_submission(comp_dir, tmp_path / "s.csv", noise=0.2, seed=4)
    assert main(["score", str(path), "--competition", str(comp_dir), "--no-log", "--json"]) == 0
    pearson = json.loads(capsys.readouterr().out)["pearson"]
    assert main(["score", str(path), "--competition", str(comp_dir), "--no-log"]) == 0
    assert f"Pearson r {pearson:.5f}" in capsys.readouterr().out


# --- breakdowns of competitions whose pairs are tagged by ion-mode type or novelty band ------------

TYPES = ["positive-positive", "negative-negative", "cross"]
BANDS = ["0.0-0.4", "0.4-0.6", "0.6-0.8", "0.8-1.0"]


def _tag_pairs(folder, ids, columns, seed=0):
    """Write private/pair_details.csv with ``columns`` (name -> values to draw from) for every solution id."""
    rng = np.random.default_rng(seed)
    tags = {name: np.array(values, dtype=object)[rng.integers(0, len(values), len(ids))] for name, values in columns.items()}
    lines = ["id,same_molecule" + "".join(f",{name}" for name in columns)]
    for row, i in enumerate(ids):
        lines.append(f"{i},0" + "".join(f",{tags[name][row]}" for name in columns))
    (folder / "private" / "pair_details.csv").write_text("\n".join(lines) + "\n")
    return tags


@pytest.mark.parametrize(
    "columns",
    [{"pair_type": TYPES}, {"novelty_band": BANDS}, {"pair_type": TYPES, "novelty_band": BANDS}, {"pair_type": ["cross"]}],
)
def test_breakdowns_are_the_rmse_of_each_kind_of_pair(tmp_path, columns):
    folder = make_competition(tmp_path, n_pairs=200)
    ids, truth, usages = read_solution(folder)
    tags = _tag_pairs(folder, ids, columns)
    guess = np.clip(truth + np.random.default_rng(1).normal(0, 0.1, len(ids)), 0, 1)
    write_submission_file(tmp_path / "s.csv", ids, guess.tolist())
    result = score_submission(tmp_path / "s.csv", folder)
    keys = {"pair_type": ("per_pair_type_rmse", TYPES), "novelty_band": ("per_novelty_band_rmse", BANDS)}
    for column, (key, labels) in keys.items():
        for usage in ("Public", "Private"):
            if column not in columns:
                assert key not in result.details[usage]
                continue
            found = result.details[usage][key]
            assert list(found) == labels
            mask = np.asarray(usages) == usage
            for label in labels:
                rows = mask & (tags[column] == label)
                expected = root_mean_squared_error(truth[rows], guess[rows]) if rows.any() else None
                assert found[label] == (pytest.approx(expected) if expected is not None else None)
        shown = result.to_dict()
        if column in columns:
            assert shown[key] == {k: None if v is None else round(v, 5) for k, v in result.details["Public"][key].items()}
            assert result.to_dict(private=True)["private_diagnostics"][key] == result.details["Private"][key]
        else:
            assert key not in shown


def test_kit_score_json_and_report_show_the_breakdowns(tmp_path, capsys):
    folder = make_competition(tmp_path, n_pairs=120)
    _tag_pairs(folder, read_solution(folder)[0], {"pair_type": TYPES, "novelty_band": BANDS})
    perfect_submission(folder, tmp_path / "p.csv", noise=0.05)
    assert main(["score", str(tmp_path / "p.csv"), "--competition", str(folder), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out["per_pair_type_rmse"]) == TYPES and list(out["per_novelty_band_rmse"]) == BANDS
    assert all(v is None or v == round(v, 5) for v in out["per_pair_type_rmse"].values())
    assert main(["score", str(tmp_path / "p.csv"), "--competition", str(folder)]) == 0
    report = capsys.readouterr().out
    assert "Public, RMSE per pair type: positive-positive" in report and "RMSE per novelty band" in report


@pytest.mark.parametrize(
    "header, row, fragment",
    [
        ("id,same_molecule,pair_type", "{i},0,mixed", "found 'pair_type'"),
        ("id,same_molecule,pair_type", "{i},0,Cross", "found 'pair_type'"),
        ("id,same_molecule,pair_type", "{i},0,", "found 'pair_type'"),
        ("id,same_molecule,novelty_band", "{i},0,0.0-0.1", "found 'novelty_band'"),
        ("id,same_molecule,novelty_band", "{i},0,0.4", "found 'novelty_band'"),
        ("id,same_molecule,novelty_band", '{i},0,=HYPERLINK("x")', "found 'novelty_band'"),
        ("id,same_molecule,usage", "{i},0,Public", "found 'usage'"),
        ("id,same_molecule,pair_type,pair_type", "{i},0,cross,cross", "found 'pair_type"),
        ("id,pair_type,same_molecule", "{i},cross,0", "expected columns id,same_molecule"),
    ],
)
def test_damaged_tags_are_one_line(tmp_path, header, row, fragment, capsys):
    folder = make_competition(tmp_path, n_pairs=30)
    (folder / "private" / "pair_details.csv").write_text(
        header + "\n" + "".join(row.format(i=i) + "\n" for i in read_solution(folder)[0])
    )
    perfect_submission(folder, tmp_path / "p.csv")
    assert main(["score", str(tmp_path / "p.csv"), "--competition", str(folder)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and fragment in err, err


def test_log_and_page_carry_the_breakdowns_beside_the_bins(tmp_path):
    from kit.board import pages as leaderboard_pages
    from kit.board.leaderboard import build_leaderboard

    folder = make_competition(tmp_path, n_pairs=120)
    _tag_pairs(folder, read_solution(folder)[0], {"pair_type": TYPES, "novelty_band": BANDS})
    perfect_submission(folder, tmp_path / "p.csv", noise=0.05)
    lb = tmp_path / "lb"
    assert (
        main(["score", str(tmp_path / "p.csv"), "--competition", str(folder), "--leaderboard", str(lb), "--participant", "ada"])
        == 0
    )
    row = read_log(lb / "practice.csv").iloc[0]
    assert {"cross", "positive-positive", "novelty 0.0-0.4", "novelty 0.8-1.0"} <= set(row["per_bin_public"])
    assert all(v is None or v == round(v, 5) for v in row["per_bin_public"].values())
    standings = build_leaderboard(folder, leaderboard=lb)
    assert "Per-bin RMSE" in [title for title, _, _ in leaderboard_pages.plot_images(standings)]
    assert "Right of the dotted line: RMSE on each kind of pair" in standings.html_path.read_text()
