"""kit export codabench: the bundle passes the v2 unpacker's checks, and its scoring program
(run as Codabench's compute worker runs it, on NumPy alone) gives `kit score`'s numbers and messages."""
import ast
import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from builders import make_competition, perfect_submission, rehash
from kit.cli import main
from kit.competition.folder import load_competition
from kit.errors import SubmissionError, UserError
from kit.hosting import codabench_scorer
from kit.hosting.codabench import MAX_KEY, export_codabench, scoring_program_source
from kit.hosting.files import parse_when, public_files
from kit.scoring import reader as submission_format
from kit.scoring.metrics import shown_scores
from kit.scoring.scorer import Scorer
from test_scoring_scorer import BAD, _valid_lines

# Leaderboard.SUBMISSION_RULES in Codabench's src/apps/leaderboards/models.py
SUBMISSION_RULES = {"Add", "Add_And_Delete", "Add_And_Delete_Multiple", "Force_Last", "Force_Latest_Multiple",
                    "Force_Best"}

# Runs the scoring program as the compute worker runs it: metadata.yaml's command with
# `$input` and `$output` replaced (by each case's folders instead of /app/input and
# /app/output), in the program folder; once per case folder, in one process. Every import
# but the standard library and NumPy is refused, pandas too unless the second argument
# says it may load (the scoring image has it); reports what the program loaded.
RUNNER = r"""
import contextlib, importlib.abc, io, json, os, runpy, shlex, sys
allow_pandas = sys.argv[1] == "with-pandas"
BLOCKED = {"kit", "scipy", "sklearn", "matchms", "yaml", "matplotlib", "rdkit"} | (set() if allow_pandas else {"pandas"})
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is not available in the scoring image")
        return None
sys.meta_path.insert(0, Refuse())
if allow_pandas:
    import pandas  # present in the image: loaded before the program, as any site package could be
before = set(sys.modules)
with open("metadata.yaml") as handle:
    command = handle.read().split("command:", 1)[1].strip()
results = {}
for case in sys.argv[2:]:
    argv = shlex.split(command.replace("$input", case + "/input").replace("$output", case + "/output"))
    assert argv[0] == "python3", argv
    sys.argv = argv[1:]
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            runpy.run_path(sys.argv[0], run_name="__main__")
            code = 0
        except SystemExit as exc:
            code = exc.code
    results[case] = {"code": code, "stderr": err.getvalue(), "stdout": out.getvalue()}
    if code == 0:  # the values the program read, bit for bit, from its own functions
        program = runpy.run_path(sys.argv[0], run_name="scoring")
        expected = program["read_reference"](case + "/input/ref")[0]
        found = program["find_submission"](case + "/input/res")
        values = program["read_submission"](found, expected_ids=expected).aligned_values()
        results[case]["values"] = [float(v).hex() for v in values]
loaded = {m.split(".")[0] for m in set(sys.modules) - before}
third_party = sorted(m for m in loaded - set(sys.stdlib_module_names) if not m.startswith("_"))
print(json.dumps({"results": results, "third_party": third_party}))
"""


@pytest.fixture(scope="module")
def comp_dir(tmp_path_factory):
    folder = make_competition(tmp_path_factory.mktemp("data"), n_pairs=50, seed=3, max_daily_submissions=3)
    # A licence line, as MassBank records carry, for the terms page.
    (folder / "train.mgf").write_text("BEGIN IONS\nSPECTRUM_ID=a\nLICENSE=CC BY-NC\n100.0 1.0\nEND IONS\n")
    return rehash(folder)


@pytest.fixture(scope="module")
def bundle(comp_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle") / "practice.zip"
    export_codabench(comp_dir, out, start="2026-01-05", end="2026-03-01", title="Spectral similarity (class)")
    folder = out.parent / "unpacked"
    with zipfile.ZipFile(out) as archive:
        archive.extractall(folder)
    return out, folder


# --- the bundle, checked as Codabench's v2 unpacker checks it --------------------------


def _nonempty(folder, relative):
    path = folder / relative
    assert path.exists(), f"{relative} missing from the bundle"
    if path.is_dir():
        assert any(p.is_file() and p.stat().st_size for p in path.rglob("*")), f"{relative} is empty"
    else:
        assert path.stat().st_size > 0, f"{relative} is empty"
    return path


def _when(text):
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M")


def check_v2_bundle(folder):
    """The unpacker's checks (tasks/phases/leaderboards/pages/terms/image) and the serializers'."""
    spec = yaml.safe_load((folder / "competition.yaml").read_text())
    assert str(spec["version"]) == "2" and spec["title"]
    assert _nonempty(folder, spec["image"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    _nonempty(folder, spec["terms"])
    for page in spec["pages"]:
        assert page["title"]
        _nonempty(folder, page["file"])
    task_indexes = [task["index"] for task in spec["tasks"]]
    assert len(set(task_indexes)) == len(task_indexes)
    for task in spec["tasks"]:
        _nonempty(folder, task["scoring_program"])
        _nonempty(folder, task["reference_data"])
    phases = sorted(spec["phases"], key=lambda p: p.get("index", 0))
    assert len({p["index"] for p in phases}) == len(phases)
    for phase in phases:
        assert phase["tasks"] and set(phase["tasks"]) <= set(task_indexes)
        _nonempty(folder, phase["public_data"])
    for first, second in zip(phases, phases[1:]):
        assert first.get("end"), "a phase followed by another needs an end"
        assert _when(second["start"]) > _when(first["end"]) > _when(first["start"])
    assert spec["leaderboards"], "leaderboards (plural) required"
    for board in spec["leaderboards"]:
        assert len(board["key"]) <= MAX_KEY and len(board["title"]) <= 64
        assert board["submission_rule"] in SUBMISSION_RULES
        columns = board["columns"]
        assert columns and len({c["index"] for c in columns}) == len(columns)
        assert len({c["key"] for c in columns}) == len(columns)
        for column in columns:
            assert len(column["key"]) <= MAX_KEY and len(column["title"]) <= MAX_KEY
            assert column["sorting"] in ("asc", "desc")
    return spec


def test_bundle_passes_the_v2_unpacker_checks(bundle, comp_dir):
    spec = check_v2_bundle(bundle[1])
    assert spec["title"] == "Spectral similarity (class)"
    public, final = sorted(spec["phases"], key=lambda p: p["index"])
    assert final["auto_migrate_to_this_phase"] is True and not public.get("auto_migrate_to_this_phase")
    assert public["start"] == "2026-01-05 00:00" and public["end"] == "2026-03-01 23:59"
    assert final["start"] == "2026-03-02 00:00" and final["end"] == "2026-03-02 00:01"
    assert public["max_submissions_per_day"] == 3  # from competition.json
    board = spec["leaderboards"][0]
    assert board["submission_rule"] == "Force_Best"  # each participant's best moves to the final phase
    primary = board["columns"][board.get("primary_index", 0)]
    assert (primary["key"], primary["sorting"]) == ("rmse", "asc")
    assert [c["key"] for c in board["columns"]] == [k for k, _, _ in codabench_scorer.leaderboard_columns()]
    assert (bundle[1] / "scoring_program" / "metadata.yaml").read_text() == "command: python3 scoring.py $input $output\n"


# Codabench's own rules for phases (codalab/codabench, src/apps):
# - competitions/unpackers/v2.py: a phase without max_submissions_per_day gets 5, without
#   max_submissions 100 (per participant, in all);
# - competitions/models.py Phase.can_user_make_submissions: a participant's submissions in
#   the phase (migrated ones included, failed ones not) against both caps; 0 means no cap;
# - api/serializers/competitions.py PhaseSerializer.get_status: Current from start to end
#   (forever without an end); static/riot/competitions/detail/submission_upload.tag
#   uploads only while the phase is Current;
# - competitions/tasks.py do_phase_migrations: migrates once start has passed, end or not.


def _caps(phase):
    return phase.get("max_submissions_per_day", 5), phase.get("max_submissions", 100)


def _may_submit(phase, today, in_all):
    per_day, total = _caps(phase)
    return not ((per_day and today >= per_day) or (total and in_all >= total))


def _status(phase, now):
    if now < _when(phase["start"]):
        return "Next"
    if phase.get("end") and _when(phase["end"]) < now:
        return "Previous"
    return "Current"


@pytest.mark.parametrize("start, end, days", [
    ("2026-01-05", "2026-03-01", 56),                     # eight weeks: 56 x 3 > Codabench's default 100
    ("2026-01-05T18:00", "2026-01-06T06:00", 2),          # two dates, half a day each
    ("2026-02-01", "2026-02-01T23:00", 1),
])
def test_public_phase_allows_the_daily_limit_on_every_day(comp_dir, tmp_path, start, end, days):
    out = export_codabench(comp_dir, tmp_path / "b.zip", start=start, end=end)
    public = sorted(check_v2_bundle(_unzip(out, tmp_path / "u"))["phases"], key=lambda p: p["index"])[0]
    assert "max_submissions" in public  # else the unpacker's 100 applies
    assert _caps(public) == (3, 3 * days)
    first, last = _when(public["start"]), _when(public["end"])
    dates = {(first + dt.timedelta(minutes=m)).date() for m in range(int((last - first).total_seconds() // 60) + 1)}
    assert len(dates) == days
    # A participant who uses the daily limit on every date of the phase is never stopped.
    made = 0
    for _ in sorted(dates):
        for today in range(3):
            assert _may_submit(public, today, made)
            made += 1
        assert not _may_submit(public, 3, made)


@pytest.mark.parametrize("value, total", [("40", 40), ("1", 1), ("0", None), ("-3", None)])
def test_the_teacher_may_set_the_public_total(comp_dir, tmp_path, value, total, capsys):
    out = tmp_path / "b.zip"
    code = main(["export", "codabench", "--competition", str(comp_dir), "--out", str(out), "--start", "2026-01-05",
                 "--end", "2026-03-01", "--max-submissions", value])
    if total is None:
        assert code == 2 and not out.exists()
        last_line = capsys.readouterr().err.strip().splitlines()[-1]
        assert last_line.endswith(f"--max-submissions must be an integer >= 1, found {value}")
        return
    assert code == 0
    public = sorted(check_v2_bundle(_unzip(out, tmp_path / "u"))["phases"], key=lambda p: p["index"])[0]
    assert _caps(public) == (3, total)


def test_final_phase_gives_no_private_score_to_an_upload(bundle):
    spec = check_v2_bundle(bundle[1])
    public, final = sorted(spec["phases"], key=lambda p: p["index"])
    assert final["auto_migrate_to_this_phase"] is True
    start, end = _when(final["start"]), _when(final["end"])
    assert start - _when(public["end"]) == dt.timedelta(minutes=1) and end - start == dt.timedelta(minutes=1)
    # The upload page takes files only while the phase is Current: one minute, at the deadline.
    moments = [start - dt.timedelta(minutes=1)] + [end + dt.timedelta(minutes=m) for m in (1, 60, 60 * 24 * 365)]
    assert [_status(final, m) for m in moments] == ["Next", "Previous", "Previous", "Previous"]
    assert _status(public, end + dt.timedelta(minutes=1)) == "Previous"
    # One submission in all: the migrated one uses it, so its owner can add none, even by the API.
    assert _caps(final) == (1, 1)
    assert not _may_submit(final, today=0, in_all=1)
    assert final["tasks"] == [1] and spec["tasks"][1]["reference_data"] == "reference_data/private/"


def test_tasks_hold_the_public_and_the_private_rows(bundle, comp_dir):
    spec = yaml.safe_load((bundle[1] / "competition.yaml").read_text())
    solution = (comp_dir / "private" / "solution.csv").read_text().splitlines()[1:]
    usage_of_task = {}
    for task in spec["tasks"]:
        ref = bundle[1] / task["reference_data"]
        rows = (ref / "solution.csv").read_text().splitlines()
        assert rows[0] == "id,similarity,Usage"
        usages = {r.rsplit(",", 1)[1] for r in rows[1:]}
        assert len(usages) == 1
        usage_of_task[task["index"]] = usages.pop()
        expected = [r.split(",")[0] for r in solution if r.endswith("," + usage_of_task[task["index"]])]
        assert [r.split(",")[0] for r in rows[1:]] == expected
        assert (ref / "expected_ids.csv").read_text().split() == ["id"] + [r.split(",")[0] for r in solution]
    phases = sorted(spec["phases"], key=lambda p: p["index"])
    assert [usage_of_task[p["tasks"][0]] for p in phases] == ["Public", "Private"]


def test_participant_data_is_every_public_file_and_nothing_private(bundle, comp_dir):
    with zipfile.ZipFile(bundle[0]) as archive:
        names = archive.namelist()
    shared = sorted(n.removeprefix("public_data/") for n in names if n.startswith("public_data/"))
    assert shared == [name for name, _ in public_files(load_competition(comp_dir))]
    assert "competition.json" in shared and not any("private" in n or "solution" in n for n in shared)
    for name in shared:
        assert (bundle[1] / "public_data" / name).read_bytes() == (comp_dir / name).read_bytes()


def test_pages_say_what_participants_need(bundle):
    pages = {p.stem: p.read_text() for p in (bundle[1] / "pages").glob("*.md")}
    assert set(pages) == {"overview", "evaluation", "data", "terms"}
    assert "MS2DeepScore" in pages["overview"] and "13:84" in pages["overview"]
    assert "Private" in pages["evaluation"] and "id,similarity" in pages["evaluation"] and "3" in pages["evaluation"]
    assert "test_pairs.csv" in pages["data"] and "Tanimoto" in pages["data"]
    assert "CC BY-NC" in pages["terms"] and "non-commercial" in pages["terms"]


def test_same_competition_same_bytes(comp_dir, tmp_path, bundle):
    again = export_codabench(
        comp_dir, tmp_path / "again.zip", start="2026-01-05", end="2026-03-01", title="Spectral similarity (class)"
    )
    assert again.read_bytes() == bundle[0].read_bytes()


# --- the scoring program ------------------------------------------------------------


def test_program_is_the_kits_own_modules_without_kit_imports():
    source = scoring_program_source()
    tree = ast.parse(source)
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert "kit" not in imported
    assert imported - set(sys.stdlib_module_names) == {"numpy"}
    assert "csv" not in {n.split(".")[0] for n in _imports_of(submission_format)}  # one parser: its own
    for module in (submission_format, codabench_scorer):
        body = Path(module.__file__).read_text()
        assert "\n".join(line for line in body.splitlines() if not line.startswith("from kit")) in source


def _imports_of(module):
    tree = ast.parse(Path(module.__file__).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield node.module or ""


def _layout(root, reference, submission_bytes=None, extra=None):
    """A folder laid out as the compute worker lays out /app: input/{ref,res}, output."""
    (root / "input" / "res").mkdir(parents=True)
    (root / "output").mkdir()
    ref = root / "input" / "ref"
    ref.mkdir()
    for path in reference.iterdir():
        (ref / path.name).write_bytes(path.read_bytes())
    if submission_bytes is not None:
        (root / "input" / "res" / "submission.csv").write_bytes(submission_bytes)
    for name, data in (extra or {}).items():
        target = root / "input" / "res" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return root


def _run_program(bundle_folder, cases, pandas=False):
    runner = bundle_folder.parent / "runner.py"
    runner.write_text(RUNNER)
    program = bundle_folder / "scoring_program"
    done = subprocess.run(
        [sys.executable, "-I", str(runner), "with-pandas" if pandas else "no-pandas", *map(str, cases)],
        cwd=program,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    # With pandas loaded first, NumPy is already there: the program loads nothing more.
    assert report["third_party"] == ([] if pandas else ["numpy"]), report["third_party"]
    return report["results"]


@pytest.mark.parametrize("pandas", [False, True], ids=["numpy-only", "pandas-present"])
def test_program_scores_like_kit_score_on_public_and_private_rows(bundle, comp_dir, tmp_path, pandas):
    submission = perfect_submission(comp_dir, tmp_path / "s.csv", noise=0.2, seed=5)
    cases = [
        _layout(tmp_path / usage, bundle[1] / "reference_data" / usage, submission.read_bytes())
        for usage in ("public", "private")
    ]
    results = _run_program(bundle[1], cases, pandas=pandas)
    result = Scorer(comp_dir).score(submission)
    for case, usage in zip(cases, ("Public", "Private")):
        assert results[str(case)]["code"] == 0, results[str(case)]["stderr"]
        assert results[str(case)]["stdout"].startswith(f"{usage} RMSE")
        scores = json.loads((case / "output" / "scores.json").read_text())
        # Exactly what kit score shows, every number rounded to 5 decimals.
        assert scores == codabench_scorer.scores_for(result.details[usage])
        assert {"rmse", "binned_rmse", "mae", "pearson"} <= set(scores)
        assert scores["rmse"] == shown_scores(result.public if usage == "Public" else result.private)
        assert all(value == round(value, 5) for value in scores.values())


@pytest.mark.parametrize("pandas", [False, True], ids=["numpy-only", "pandas-present"])
def test_program_reads_every_value_as_float_does(bundle, comp_dir, tmp_path, pandas):
    # Under pandas 2.2's parser 2,970 of 6,730 values of a perfect file were 1 ulp off;
    # a rounded score cannot show that, the values themselves can.
    ids = _solution(comp_dir)[0]
    texts = _awkward_numbers(ids.size)
    data = ("id,similarity\n" + "".join(f"{i},{t}\n" for i, t in zip(ids, texts))).encode()
    case = _layout(tmp_path / "case", bundle[1] / "reference_data" / "private", data)
    got = _run_program(bundle[1], [case], pandas=pandas)[str(case)]
    assert got["code"] == 0, got["stderr"]
    assert got["values"] == [float(t).hex() for t in texts]
    path = case / "input" / "res" / "submission.csv"
    kit_values = submission_format.read_submission(path, expected_ids=ids).aligned_values()
    assert [float(v).hex() for v in kit_values] == got["values"]


def test_program_warns_of_values_outside_the_unit_interval_as_kit_score_does(bundle, comp_dir, tmp_path, capsys):
    ids = _solution(comp_dir)[0]
    values = ["0.5"] * ids.size
    values[0], values[1] = "-1.23456789e-05", "1.2345678"
    data = ("id,similarity\n" + "".join(f"{i},{v}\n" for i, v in zip(ids, values))).encode()
    case = _layout(tmp_path / "case", bundle[1] / "reference_data" / "public", data)
    got = _run_program(bundle[1], [case])[str(case)]
    assert got["code"] == 0, got["stderr"]
    path = case / "input" / "res" / "submission.csv"
    assert main(["score", str(path), "--competition", str(comp_dir), "--no-log"]) == 0
    warning = "2 similarities are outside [0, 1] (min -0.00001, max 1.23457)"
    assert warning in got["stderr"] and warning in capsys.readouterr().err


def _awkward_numbers(n, seed=11):
    """Spellings whose correctly rounded value differs from a naive digit-by-digit one."""
    rng = np.random.default_rng(seed)
    texts = []
    for k in range(n):
        x = float(rng.random())
        texts.append(
            [
                repr(x),
                f"{x:.25f}",
                f"{x:.17e}",
                f"{x * 1000:.20f}e-3",
                f"0.{rng.integers(10**17, 10**18)}",
                f"{rng.integers(1, 10**9)}e-9",
            ][k % 6]
        )
    return texts


def test_program_refuses_every_bad_file_with_kit_scores_message(bundle, comp_dir, tmp_path):
    solution = _solution(comp_dir)
    lines = _valid_lines(solution)
    cases, messages = [], {}
    for k, (name, (build, _)) in enumerate(BAD.items()):
        data = build(lines)
        case = _layout(tmp_path / f"case{k}", bundle[1] / "reference_data" / "public", data)
        path = case / "input" / "res" / "submission.csv"
        with pytest.raises(SubmissionError) as info:
            Scorer(comp_dir).score(path)
        cases.append(case)
        messages[str(case)] = (name, str(info.value))
    results = _run_program(bundle[1], cases)
    for case, (name, message) in messages.items():
        got = results[case]
        assert got["code"] == 2, name
        assert got["stderr"].strip().splitlines() == [f"scoring.py: error: {message}"], name
        assert not (Path(case) / "output" / "scores.json").exists(), name


@pytest.mark.parametrize(
    "extra, words",
    [
        ({}, "no CSV file in the submission"),
        ({"a.csv": b"id,similarity\n", "b/c.csv": b"id,similarity\n"}, "2 CSV files in the submission"),
        ({"notes.txt": b"hello"}, "found 1 other file"),
        ({"/".join("d" * 40) + "/s.csv": b"id,similarity\n"}, "nested more than 16 deep"),
        ({f"f{k}.txt": b"" for k in range(1001)}, "more than 1000 files"),
    ],
)
def test_program_needs_exactly_one_csv(bundle, tmp_path, extra, words, capsys):
    case = _layout(tmp_path / "case", bundle[1] / "reference_data" / "public", extra=extra)
    assert codabench_scorer.main([str(case / "input"), str(case / "output")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]


def test_program_finds_the_csv_in_a_subfolder_and_ignores_archive_clutter(bundle, comp_dir, tmp_path, capsys):
    data = perfect_submission(comp_dir, tmp_path / "s.csv").read_bytes()
    case = _layout(
        tmp_path / "case",
        bundle[1] / "reference_data" / "private",
        extra={"predictions/final.csv": data, "__MACOSX/predictions/._final.csv": b"\x00", ".hidden.csv": b"x"},
    )
    assert codabench_scorer.main([str(case / "input"), str(case / "output")]) == 0
    assert json.loads((case / "output" / "scores.json").read_text())["rmse"] == 0.0
    assert capsys.readouterr().out.startswith("Private RMSE 0.00000")


def _zip_link_extracted(res, target):
    """A zip member stored as a symbolic link, unpacked the way the worker unpacks (ZipFile.extractall)."""
    archive = res.parent / "with-link.zip"
    info = zipfile.ZipInfo("submission.csv")
    info.external_attr = 0o120777 << 16  # S_IFLNK: a link, as `zip --symlinks` stores it
    with zipfile.ZipFile(archive, "w") as bundle_zip:
        bundle_zip.writestr(info, str(target))
    with zipfile.ZipFile(archive) as unpacked:
        unpacked.extractall(res)
    archive.unlink()


@pytest.mark.parametrize(
    "attack, words",
    [
        ("link to the solution", "submission.csv in the submission is a link"),
        ("link to the reference folder", "ref in the submission is a link"),
        ("link beside a valid file", "notes.txt in the submission is a link"),
        ("link in a subfolder", "preds/submission.csv in the submission is a link"),
        ("hard link to the solution", "is a hard link"),
        ("named pipe", "submission.csv in the submission is not a regular file"),
        ("link stored in the zip", "wrong header"),
    ],
)
def test_program_refuses_links_and_special_files_and_never_quotes_another_file(bundle, comp_dir, tmp_path, attack, words, capsys):
    case = _layout(tmp_path / "case", bundle[1] / "reference_data" / "public")
    res, ref = case / "input" / "res", case / "input" / "ref"
    solution = ref / "solution.csv"
    if attack == "link to the solution":
        (res / "submission.csv").symlink_to(solution)
    elif attack == "link to the reference folder":
        (res / "ref").symlink_to(ref, target_is_directory=True)
    elif attack == "link beside a valid file":
        perfect_submission(comp_dir, res / "submission.csv")
        (res / "notes.txt").symlink_to(solution)
    elif attack == "link in a subfolder":
        (res / "preds").mkdir()
        (res / "preds" / "submission.csv").symlink_to(solution)
    elif attack == "hard link to the solution":
        try:
            os.link(solution, res / "submission.csv")
        except OSError as exc:
            pytest.skip(f"cannot make a hard link here: {exc}")
    elif attack == "named pipe":
        os.mkfifo(res / "submission.csv")
    else:
        _zip_link_extracted(res, solution)
    assert codabench_scorer.main([str(case / "input"), str(case / "output")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0], err
    for row in solution.read_text().splitlines()[1:]:
        assert row.split(",")[1] not in err[0]  # no truth from the solution in the message
    assert not (case / "output" / "scores.json").exists()


@pytest.mark.parametrize("damage", ["no expected ids", "mixed usage", "unknown id", "text truth"])
def test_damaged_reference_data_is_one_line(bundle, comp_dir, tmp_path, damage, capsys):
    case = _layout(
        tmp_path / "case", bundle[1] / "reference_data" / "public", perfect_submission(comp_dir, tmp_path / "s.csv").read_bytes()
    )
    ref = case / "input" / "ref"
    rows = (ref / "solution.csv").read_text().splitlines()
    if damage == "no expected ids":
        (ref / "expected_ids.csv").unlink()
    elif damage == "mixed usage":
        (ref / "solution.csv").write_text("\n".join(rows + [rows[1].replace("Public", "Private")]) + "\n")
    elif damage == "unknown id":
        (ref / "solution.csv").write_text("\n".join(rows + ["99999,0.5,Public"]) + "\n")
    else:
        (ref / "solution.csv").write_text("\n".join(rows + ["1,high,Public"]) + "\n")
    assert codabench_scorer.main([str(case / "input"), str(case / "output")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "reference data" in err[0]


def test_program_usage_line(capsys):
    assert codabench_scorer.main(["only-one"]) == 2
    assert "usage: python3 scoring.py" in capsys.readouterr().err


# --- command line and options -----------------------------------------------------------


def test_cli_writes_the_bundle(comp_dir, tmp_path, capsys):
    out = tmp_path / "b.zip"
    assert main(["export", "codabench", "--competition", str(comp_dir), "--out", str(out)]) == 0
    assert "codabench.org" in capsys.readouterr().out
    spec = check_v2_bundle(_unzip(out, tmp_path / "u"))
    public = spec["phases"][0]
    start = _when(public["start"])
    assert start.date() == dt.datetime.now(dt.timezone.utc).date()
    assert (_when(public["end"]) - start).days == 8 * 7


def test_deadline_from_competition_json_ends_the_public_phase(comp_dir, tmp_path):
    copy = _copy_competition(comp_dir, tmp_path / "c")
    meta = json.loads((copy / "competition.json").read_text())
    (copy / "competition.json").write_text(json.dumps(dict(meta, deadline="2026-06-30T12:00")))
    out = export_codabench(copy, tmp_path / "b.zip", start="2026-06-01")
    spec = check_v2_bundle(_unzip(out, tmp_path / "u"))
    assert spec["phases"][0]["end"] == "2026-06-30 12:00" and spec["phases"][1]["start"] == "2026-06-30 12:01"


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--start", "2026-05-01", "--end", "2026-04-01"], "before it starts"),
        (["--start", "2026-05-01", "--end", "2026-05-01T00:00"], "before it starts"),
        (["--start", "May 1st"], "expected a UTC date"),
        (["--end", "2026-13-01"], "expected a UTC date"),
        (["--title", " "], "1 to 100 characters"),
        (["--title", "x" * 101], "1 to 100 characters"),
    ],
)
def test_bad_options_are_one_line(comp_dir, tmp_path, argv, words, capsys):
    out = tmp_path / "b.zip"
    assert main(["export", "codabench", "--competition", str(comp_dir), "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kit export: error:") and words in err[0]
    assert not out.exists() and not list(tmp_path.iterdir())


def test_out_must_be_a_zip(comp_dir, tmp_path):
    with pytest.raises(UserError, match="ending in .zip"):
        export_codabench(comp_dir, tmp_path / "bundle.tar")


def test_without_the_answers_nothing_is_written(comp_dir, tmp_path):
    copy = _copy_competition(comp_dir, tmp_path / "c", answers=False)
    with pytest.raises(UserError, match="private"):
        export_codabench(copy, tmp_path / "b.zip")
    assert not (tmp_path / "b.zip").exists()


@pytest.mark.parametrize(
    "extra",
    [
        "leaderboard/practice.csv",
        "leaderboard/.practice.lock",
        ".lock",
        "notes.txt",
        "sample_submission (1).csv",
        "submissions/practice/a.csv",
        "answers.csv -> private/solution.csv",
        "copy -> private",
    ],
)
def test_only_the_files_kit_prepare_lists_are_published(comp_dir, tmp_path, extra):
    copy = _copy_competition(comp_dir, tmp_path / "c")
    name, _, target = extra.partition(" -> ")
    (copy / name).parent.mkdir(parents=True, exist_ok=True)
    if target:
        (copy / name).symlink_to(copy / target)
    else:
        (copy / name).write_text("id,similarity,Private\n0,0.5,0.12345\n")
    # An older competition.json also lists private/ files: never published.
    listed = sorted(
        [
            "competition.json",
            *(n for n in json.loads((copy / "competition.json").read_text())["files"] if not n.startswith("private/")),
        ]
    )
    assert [n for n, _ in public_files(load_competition(copy))] == listed
    export_codabench(copy, tmp_path / "b.zip", start="2026-01-05", end="2026-03-01")
    with zipfile.ZipFile(tmp_path / "b.zip") as archive:
        shared = sorted(n.removeprefix("public_data/") for n in archive.namelist() if n.startswith("public_data/"))
    assert shared == listed


def _break_listed_file(copy, kind):
    meta_path = copy / "competition.json"
    meta = json.loads(meta_path.read_text())
    if kind == "missing":
        (copy / "test.mgf").unlink()
    elif kind == "changed":
        (copy / "test.mgf").write_text("BEGIN IONS\nEND IONS\n")
    elif kind == "a link":
        (copy / "test.mgf").unlink()
        (copy / "test.mgf").symlink_to(copy / "private" / "solution.csv")
    elif kind == "a folder":
        (copy / "test.mgf").unlink()
        (copy / "test.mgf").mkdir()
    elif kind == "a pipe":
        (copy / "test.mgf").unlink()
        os.mkfifo(copy / "test.mgf")
    elif kind == "a linked folder":
        (copy / "data").symlink_to(copy / "private", target_is_directory=True)
        meta["files"]["data/solution.csv"] = meta["files"]["test.mgf"]
    else:  # a name in competition.json pointing elsewhere
        digest = hashlib.sha256((copy / "private" / "solution.csv").read_bytes()).hexdigest()
        meta["files"][kind] = digest
    meta_path.write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "kind, words",
    [
        ("missing", "is missing"),
        ("changed", "differs from what kit prepare wrote"),
        ("a link", "symbolic link"),
        ("a folder", "not a regular file"),
        ("a pipe", "not a regular file"),
        ("a linked folder", "symbolic link"),
        ("./private/solution.csv", "not in private/"),
        ("../c/private/solution.csv", "inside the competition folder"),
        ("/etc/passwd", "inside the competition folder"),
        ("c\\..\\private\\solution.csv", "inside the competition"),
        ("data/../private/solution.csv", "inside the competition folder"),
        (".hidden", "inside the competition folder"),
    ],
)
def test_a_listed_public_file_that_is_not_what_kit_prepare_wrote_stops_the_export(comp_dir, tmp_path, kind, words):
    copy = _copy_competition(comp_dir, tmp_path / "c")
    _break_listed_file(copy, kind)
    with pytest.raises(UserError, match="^[^\n]*$") as info:
        export_codabench(copy, tmp_path / "b.zip", start="2026-01-05", end="2026-03-01")
    assert words in str(info.value)
    assert not (tmp_path / "b.zip").exists()
    assert main(["export", "codabench", "--competition", str(copy), "--out", str(tmp_path / "b.zip")]) == 2


def test_without_listed_hashes_nothing_is_published(comp_dir, tmp_path):
    copy = _copy_competition(comp_dir, tmp_path / "c")
    meta = json.loads((copy / "competition.json").read_text())
    (copy / "competition.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "files"}))
    with pytest.raises(UserError, match="lists no public files"):
        public_files(load_competition(copy))


def test_parse_when():
    assert parse_when("2026-01-05T10:30Z", "--start") == dt.datetime(2026, 1, 5, 10, 30)


def _copy_competition(comp_dir, folder, answers=True):
    """A copy of the competition's public files, with ``private/solution.csv`` when ``answers``."""
    folder.mkdir()
    for name, path in public_files(load_competition(comp_dir)):
        (folder / name).write_bytes(path.read_bytes())
    if answers:
        (folder / "private").mkdir()
        (folder / "private" / "solution.csv").write_bytes((comp_dir / "private" / "solution.csv").read_bytes())
    return folder


def _unzip(path, folder):
    with zipfile.ZipFile(path) as archive:
        archive.extractall(folder)
    return folder


def _solution(comp_dir):
    import pandas as pd

    frame = pd.read_csv(comp_dir / "private" / "solution.csv")
    return frame["id"].to_numpy(), frame["similarity"].to_numpy(), frame["Usage"].to_numpy()


@pytest.mark.parametrize(
    "source, licence_line, words",
    [
        ("simulated", "LICENSE=CC0", "not measurements"),
        ("massbank_positive.mgf.gz", "LICENSE=CC BY", "MassBank"),
        ("my_library.msp", "", "no licence field"),
    ],
)
def test_terms_name_where_the_spectra_come_from(comp_dir, tmp_path, source, licence_line, words):
    from kit.hosting.pages import build_pages

    copy = _copy_competition(comp_dir, tmp_path / "c")
    (copy / "train.mgf").write_text(f"BEGIN IONS\n{licence_line}\nEND IONS\n")
    meta = json.loads((rehash(copy) / "competition.json").read_text())
    (copy / "competition.json").write_text(json.dumps(dict(meta, library={"sources": [{"source": source}]})))
    comp = load_competition(copy)
    terms = build_pages(comp, public_files(comp))["terms"][1]
    assert words in terms and f"`{source}`" in terms


def test_names_from_the_competition_cannot_write_markdown(comp_dir, tmp_path):
    from kit.hosting.pages import build_pages

    copy = _copy_competition(comp_dir, tmp_path / "c")
    meta = json.loads((copy / "competition.json").read_text())
    (copy / "competition.json").write_text(json.dumps(dict(meta, name="x`\n# Free answers <script>")))
    comp = load_competition(copy)
    overview = build_pages(comp, public_files(comp), title="T")["overview"][1]
    assert "\n# Free answers" not in overview and "`x' # Free answers <script>`" in overview
