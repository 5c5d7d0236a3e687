"""``kit export codabench``: a competition as a Codabench v2 bundle.

What Codabench's v2 unpacker (``src/apps/competitions/unpackers/v2.py``) and its compute
worker expect, and how the bundle meets it:

- ``competition.yaml`` at the zip's root with ``version: 2``, a ``title``, an ``image``
  (the logo, required), a ``terms`` page that is not empty, ``pages``, ``tasks``, ``phases``
  and ``leaderboards`` (plural; phases use the first one);
- two tasks, each a scoring program and reference data: *Public* scores the Public rows,
  *Private* the Private rows, as Kaggle's final ranking does;
- two phases in date order (the second starts after the first ends); the final one has
  ``auto_migrate_to_this_phase: true``: when it opens, every submission on the leaderboard
  moves to it and is scored on the Private rows. The leaderboard's ``submission_rule`` is
  ``Force_Best``, so the submission on it is each participant's best Public one;
- submission caps: the unpacker gives a phase without ``max_submissions`` a total of 100
  per participant, so the Public phase states days x daily limit (or the teacher's
  ``max_submissions``). The final phase is
  closed to uploads as far as a bundle can close it: it ends :data:`FINAL_PHASE_MINUTES`
  after it starts (the upload page accepts files only while a phase is *Current*, that
  is between its start and its end; migration runs whenever the start has passed, ended
  or not), and it allows 1 submission a day and 1 in all, which a migrated submission
  already uses (``Phase.can_user_make_submissions`` counts it). What remains open,
  written in docs/teachers.md: Codabench's submission API checks no phase dates, so a
  participant without a migrated submission (or before the migration pass) can still
  send one file to the final phase by calling it directly;
- leaderboard column keys (at most 36 characters) equal the keys of ``scores.json``; ``rmse``
  is the primary column, sorted ascending (Codabench sorts descending by default);
- the scoring program is ``metadata.yaml`` (``command: python3 scoring.py $input $output``;
  the worker replaces the two variables by ``/app/input`` and ``/app/output`` and runs
  it in ``/app/program``) and a ``scoring.py`` that reads ``ref/`` and ``res/`` below the
  input folder and writes ``scores.json``. It runs on the scoring image's Python with
  NumPy alone: :func:`scoring_program_source` inlines the kit's own modules, among them
  :mod:`kit.scoring.reader`, the one reader of submissions.

Zip members have fixed times and order: the same competition and options give the same
bytes.
"""
import ast
import datetime as dt
import importlib
import inspect
import io
import zipfile
from pathlib import Path

import yaml

from kit.competition.folder import PRIVATE, PUBLIC, as_competition
from kit.constraints import Integral, Interval, check_param
from kit.errors import UserError
from kit.fileio import atomic_path
from kit.hosting.codabench_scorer import COMMAND, leaderboard_columns
from kit.hosting.files import competition_deadline, parse_end, parse_when, public_files
from kit.hosting.pages import brief_description, build_pages, check_title, daily_limit, default_title
from kit.scoring.scorer import load_solution_masks

#: A cap on submissions in all during the Public phase: Codabench reads 0 as "no cap at all".
MAX_SUBMISSIONS = Interval(Integral, 1, None)

#: The scoring program's own module: it and every kit module it imports, recursively,
#: are inlined (imported modules first) into ``scoring.py``.
PROGRAM_MODULE = "kit.hosting.codabench_scorer"
DOCKER_IMAGE = "codalab/codalab-legacy:py312"
#: Codabench's limit on leaderboard and column keys and column titles.
MAX_KEY = 36
DEFAULT_WEEKS = 8
#: How long the final phase is *Current* (open on the upload page): as short as the
#: bundle's minute-precise dates allow. Migration does not need it open.
FINAL_PHASE_MINUTES = 1
TASKS = ((PUBLIC, "reference_data/public"), (PRIVATE, "reference_data/private"))
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def export_codabench(competition, out, *, start=None, end=None, title=None, data=None, today=None,
                     max_submissions=None):
    """Write a Codabench v2 competition bundle (a zip) for a prepared competition.

    Parameters
    ----------
    competition : Competition, str or Path
        The competition (its ``private/solution.csv`` must be present).
    out : str or Path
        The zip to write (replaced atomically).
    start, end : str, optional
        First and last day of the Public phase (``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM``, UTC).
        Default: today, and competition.json's ``deadline`` or eight weeks later. The
        Private phase opens one minute after ``end``.
    title : str, optional
        Title on Codabench (default ``Spectral similarity: <name>``).
    max_submissions : int, optional
        Submissions per participant in all during the Public phase (default: the daily
        limit times the UTC dates the phase touches, so the daily limit holds every day).
    today : datetime.date, optional
        Stands in for today's date (tests).

    Returns
    -------
    Path
        The bundle.

    Examples
    --------
    >>> export_codabench("data/practice", "practice-codabench.zip", start="2026-01-05")  # doctest: +SKIP
    PosixPath('practice-codabench.zip')
    """
    competition = as_competition(competition, data)
    out = Path(out)
    if out.suffix.lower() != ".zip":
        raise UserError(f"--out {out}: expected a file name ending in .zip")
    title = check_title(title or default_title(competition))
    phase_dates = _phase_dates(competition, start, end, today)
    files = public_files(competition)
    solution = _read_solution(competition)
    pages = build_pages(competition, files, title=title)
    members = {
        "competition.yaml": competition_yaml(competition, title, phase_dates, pages,
                                             max_submissions=max_submissions).encode(),
        "logo.png": logo_png(),
        "scoring_program/metadata.yaml": f"command: {COMMAND}\n".encode(),
        "scoring_program/scoring.py": scoring_program_source().encode(),
    }
    for key, (_, text) in pages.items():
        members[f"pages/{key}.md"] = text.encode()
    expected = "id\n" + "".join(f"{row[0]}\n" for row in solution)
    for usage, folder in TASKS:
        rows = [row for row in solution if row[2] == usage]
        members[f"{folder}/solution.csv"] = ("id,similarity,Usage\n" + "".join(",".join(r) + "\n" for r in rows)).encode()
        members[f"{folder}/expected_ids.csv"] = expected.encode()
    with atomic_path(out, suffix=".zip") as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
            for name in sorted(members):
                bundle.writestr(_member(name), members[name])
            for name, path in files:
                _write_file(bundle, f"public_data/{name}", path)
    return out


def competition_yaml(competition, title, phase_dates, pages, max_submissions=None):
    """The bundle's ``competition.yaml`` text (``max_submissions`` as in :func:`export_codabench`)."""
    (public_start, public_end), final_start = phase_dates
    final_end = final_start + dt.timedelta(minutes=FINAL_PHASE_MINUTES)
    limit = daily_limit(competition)
    if max_submissions is None:
        max_submissions = limit * submission_days(public_start, public_end)
    else:
        max_submissions = check_param(max_submissions, "--max-submissions", MAX_SUBMISSIONS)
    tasks = [
        {"index": i, "name": f"{usage} rows", "description": f"Scores a submission on the {usage} rows of the test pairs.",
         "scoring_program": "scoring_program/", "reference_data": f"{folder}/"}
        for i, (usage, folder) in enumerate(TASKS)
    ]
    phases = [
        {"index": 0, "name": PUBLIC, "start": _when(public_start), "end": _when(public_end),
         "description": f"Submit a zip holding one `id,similarity` CSV; scored on the Public rows. "
                        f"At most {limit} a day; your best submission stays on the leaderboard.",
         "max_submissions_per_day": limit, "max_submissions": max_submissions,
         "tasks": [0], "public_data": "public_data/"},
        {"index": 1, "name": "Private (final)", "start": _when(final_start), "end": _when(final_end),
         "description": "The final ranking: each participant's best Public submission moves here when the "
                        "phase opens and is scored on the Private rows. Nothing to upload in this phase.",
         "auto_migrate_to_this_phase": True, "max_submissions_per_day": 1, "max_submissions": 1,
         "tasks": [1], "public_data": "public_data/"},
    ]
    columns = [{"title": t, "key": k, "index": i, "sorting": s, "precision": 5}
               for i, (k, t, s) in enumerate(leaderboard_columns())]
    document = {
        "version": 2,
        "title": title,
        "description": brief_description(),
        "image": "logo.png",
        "registration_auto_approve": True,
        "docker_image": DOCKER_IMAGE,
        "enable_detailed_results": False,
        "terms": "pages/terms.md",
        "pages": [{"title": t, "file": f"pages/{key}.md"} for key, (t, _) in pages.items() if key != "terms"],
        "tasks": tasks,
        "phases": phases,
        "leaderboards": [{"title": "Results", "key": "main", "submission_rule": "Force_Best", "primary_index": 0,
                          "columns": columns}],
    }
    header = (f"# Codabench v2 bundle written by `kit export codabench` for competition {competition.name!r}.\n"
              "# Upload it at https://www.codabench.org/competitions/upload/ . Dates are UTC.\n")
    return header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)


def scoring_program_source():
    """The standalone ``scoring.py``: the kit's validation and metric modules, inlined.

    :data:`PROGRAM_MODULE` and the kit modules it imports (``kit.scoring.reader``,
    ``kit.scoring.metrics``, ``kit.data.tanimoto_bins``, ``kit.errors``, and what they import) are copied, each
    after the modules it imports, without their ``from kit... import`` lines. A module that
    imports the kit any other way (``import kit``, an import inside a function, an alias),
    or two modules that define the same name, stop the export: the program would not run,
    or would run other code than ``kit score``.

    Examples
    --------
    >>> "def read_submission(" in scoring_program_source()
    True
    """
    defined, parts = {}, []
    for module_name, tree, source in _inline_order(PROGRAM_MODULE):
        lines = source.splitlines(keepends=True)
        drop = set()
        for node in ast.walk(tree):
            kit_from = isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "kit"
            kit_import = isinstance(node, ast.Import) and any(a.name.split(".")[0] == "kit" for a in node.names)
            if not (kit_from or kit_import):
                continue
            if kit_import or node not in tree.body or node.level:
                raise RuntimeError(f"{module_name} line {node.lineno}: only top-level `from kit.x import y` can be inlined")
            for alias in node.names:
                if alias.asname or defined.get(alias.name) != node.module:
                    raise RuntimeError(f"{module_name} imports {alias.name} from {node.module}, which is not inlined before it")
            drop.update(range(node.lineno - 1, node.end_lineno))
        for name in _top_level_names(tree):
            if name in defined:
                raise RuntimeError(f"{module_name} defines {name}, already defined by {defined[name]}")
            defined[name] = module_name
        body = "".join(line for i, line in enumerate(lines) if i not in drop)
        parts.append(f"# {'-' * 20} {module_name} {'-' * (60 - len(module_name))}\n{body}")
    header = (
        '"""Codabench scoring program for a specsim-kit competition (written by `kit export codabench`).\n\n'
        "Usage: python3 scoring.py [INPUT_DIR OUTPUT_DIR]   (default /app/input /app/output)\n"
        "Reads INPUT_DIR/ref (solution.csv, expected_ids.csv) and the one CSV under INPUT_DIR/res;\n"
        "writes OUTPUT_DIR/scores.json. Needs Python 3.9+ and NumPy. Generated: edit the kit's\n"
        'modules, not this file.\n"""\n'
    )
    program = header + "\n\n".join(parts)
    compile(program, "scoring.py", "exec")
    return program


def logo_png():
    """A small PNG logo: the ten similarity bins as bars (same bytes every time).

    Drawn on a :class:`matplotlib.figure.Figure`: the caller's backend is left alone.
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(2, 2), dpi=64)
    axes = figure.add_axes((0.08, 0.08, 0.84, 0.84))
    heights = [0.3, 0.45, 0.55, 0.62, 0.7, 0.76, 0.82, 0.88, 0.94, 1.0]
    axes.bar(range(10), heights, color=[(0.1, 0.3 + 0.06 * i, 0.6) for i in range(10)], width=0.8)
    axes.set_axis_off()
    figure.patch.set_facecolor("white")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def submission_days(start, end):
    """How many UTC dates a phase from ``start`` to ``end`` touches (Codabench's daily caps count by date).

    Examples
    --------
    >>> submission_days(dt.datetime(2026, 1, 5), dt.datetime(2026, 3, 1, 23, 59))
    56
    >>> submission_days(dt.datetime(2026, 1, 5, 12, 0), dt.datetime(2026, 1, 6, 0, 0))
    2
    """
    return (end.date() - start.date()).days + 1


def _phase_dates(competition, start, end, today):
    """``((public start, public end), private start)`` checked to be in order."""
    today = today or dt.datetime.now(dt.timezone.utc).date()
    begin = parse_when(start, "--start") if start else dt.datetime.combine(today, dt.time())
    deadline = competition_deadline(competition)
    if end or deadline:
        finish = parse_end(end, "--end") if end else deadline
    else:
        finish = begin + dt.timedelta(weeks=DEFAULT_WEEKS)
    if finish <= begin:
        raise UserError(f"the Public phase would end ({_when(finish)}) before it starts ({_when(begin)}): "
                        "expected --end after --start")
    return (begin, finish), finish + dt.timedelta(minutes=1)


def _when(moment):
    return moment.strftime("%Y-%m-%d %H:%M")


def _read_solution(competition):
    """Rows ``(id, similarity, Usage)`` as text, in the solution's order, checked like ``kit score``."""
    ids, truth, masks = load_solution_masks(competition)
    if PRIVATE not in masks:
        raise UserError(f"{competition.solution_path}: no Private rows: expected a Public/Private split "
                        "(prepare the competition with --public-fraction below 1)")
    usage = [PUBLIC if public else PRIVATE for public in masks[PUBLIC]]
    # repr keeps every bit of each truth: the program reads back the numbers `kit score` uses.
    return [(str(i), repr(float(t)), u) for i, t, u in zip(ids.tolist(), truth.tolist(), usage)]


def _inline_order(root):
    """``(name, syntax tree, source)`` of ``root`` and the kit modules it imports, imports first."""
    order, visiting, done = [], set(), set()

    def visit(name):
        if name in done:
            return
        if name in visiting:
            raise RuntimeError(f"circular import through {name}")
        visiting.add(name)
        source = inspect.getsource(importlib.import_module(name))
        tree = ast.parse(source)
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "kit" and not node.level:
                visit(node.module)
        visiting.discard(name)
        done.add(name)
        order.append((name, tree, source))

    visit(root)
    return order


def _top_level_names(tree):
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def _member(name):
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def _write_file(bundle, name, path):
    """Stream one file into the zip (public files may be hundreds of megabytes)."""
    with open(path, "rb") as source, bundle.open(_member(name), "w", force_zip64=True) as target:
        while block := source.read(1 << 20):
            target.write(block)
