"""The learner notebooks run from top to bottom; 01 is stored with its outputs, the others without.

Each notebook runs in a fresh temporary working folder (its ``data/``, ``models/``,
``submissions/`` and ``leaderboard/`` land there) on a kernel that is this test's own
Python, so the notebook sees the same ``kit`` as the tests. Sizes come from the
notebooks' ``KIT_NOTEBOOK_*`` environment variables, set small here.
"""
import json
import os
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, structure_spectra

NOTEBOOKS = REPO / "notebooks"
KERNEL = "specsim-kit-test"
# Small sizes: the whole of notebook 01 in a couple of minutes on two cores.
SMALL = {
    "KIT_NOTEBOOK_EPOCHS": "2",
    "KIT_NOTEBOOK_PAIRS": "1000",
    "KIT_NOTEBOOK_GBM_PAIRS": "2000",
    "TF_CPP_MIN_LOG_LEVEL": "2",
}
TIMEOUT_PER_CELL = 300


def stored_notebooks():
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def test_the_tutorials_exist():
    names = [path.name for path in stored_notebooks()]
    assert "01_getting_started.ipynb" in names and "02_massbank.ipynb" in names


# Stored executed, so that it reads on a code host without running it; kept small.
WITH_OUTPUTS = {"01_getting_started.ipynb"}
MAX_STORED_BYTES = 400_000


@pytest.mark.parametrize("path", [p for p in stored_notebooks() if p.name not in WITH_OUTPUTS], ids=lambda p: p.name)
def test_stored_notebooks_have_no_outputs(path):
    """Outputs of the long notebooks are made by running them, never stored: diffs stay readable."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    dirty = [
        index for index, cell in enumerate(notebook["cells"])
        if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]
    assert not dirty, (
        f"{path.name}: code cells {dirty} have stored outputs or execution counts; "
        "clear them before committing (jupyter nbconvert --clear-output --inplace)"
    )


@pytest.mark.parametrize("name", sorted(WITH_OUTPUTS))
def test_stored_outputs_are_complete_small_and_plain(name):
    """Every code cell ran, in order, without errors; plots are PNG; no widget state; small."""
    path = NOTEBOOKS / name
    assert path.stat().st_size < MAX_STORED_BYTES, f"{name}: {path.stat().st_size:,} bytes stored"
    notebook = json.loads(path.read_text(encoding="utf-8"))
    assert "widgets" not in notebook["metadata"], f"{name}: widget state stored"
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    counts = [cell.get("execution_count") for cell in code]
    assert counts == list(range(1, len(code) + 1)), f"{name}: run every cell once, top to bottom ({counts})"
    outputs = [output for cell in code for output in cell.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"], f"{name}: a stored cell failed"
    kinds = {kind for o in outputs for kind in o.get("data", {})}
    assert "image/png" in kinds and not kinds & {"image/svg+xml", "application/vnd.jupyter.widget-view+json"}, kinds


@pytest.fixture
def kernel(tmp_path_factory, monkeypatch):
    """A kernelspec whose interpreter is this Python (the project's .venv under `make test`)."""
    from ipykernel.kernelspec import write_kernel_spec

    root = tmp_path_factory.mktemp("jupyter")
    spec = Path(write_kernel_spec(str(root / "kernels" / KERNEL)))
    info = json.loads((spec / "kernel.json").read_text())
    info["argv"][0] = sys.executable
    (spec / "kernel.json").write_text(json.dumps(info))
    # JUPYTER_PATH comes before the user's and the system's kernel folders.
    monkeypatch.setenv("JUPYTER_PATH", str(root) + os.pathsep + os.environ.get("JUPYTER_PATH", ""))
    return KERNEL


def run_notebook(path, workdir, kernel_name, stop_before=None):
    """Execute a notebook in ``workdir``; with ``stop_before``, only the cells before that heading.

    Returns the executed notebook. Raises ``nbclient.exceptions.CellExecutionError`` on
    the first failing cell, naming the cell and showing the traceback.
    """
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    if stop_before is not None:
        marks = [i for i, cell in enumerate(notebook.cells)
                 if cell.cell_type == "markdown" and cell.source.splitlines()[:1] == [stop_before]]
        assert marks, f"{path.name}: no markdown cell starting with {stop_before!r}"
        notebook.cells = notebook.cells[: marks[0]]
    client = NotebookClient(notebook, kernel_name=kernel_name, timeout=TIMEOUT_PER_CELL,
                            resources={"metadata": {"path": str(workdir)}})
    client.execute()
    return notebook


def outputs_text(notebook):
    """All stream and text outputs of a notebook, joined."""
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def images(notebook):
    """Number of PNG images among a notebook's outputs (plots and molecule drawings)."""
    return sum("image/png" in output.get("data", {}) for cell in notebook.cells for output in cell.get("outputs", []))


@pytest.mark.slow
def test_getting_started_runs_top_to_bottom(tmp_path, kernel, monkeypatch):
    for key, value in SMALL.items():
        monkeypatch.setenv(key, value)
    stored = (NOTEBOOKS / "01_getting_started.ipynb").read_bytes()
    started = time.perf_counter()
    notebook = run_notebook(NOTEBOOKS / "01_getting_started.ipynb", tmp_path, kernel)
    seconds = time.perf_counter() - started
    # An executed copy in memory: the stored notebook (with its stored outputs) is left as it was.
    assert (NOTEBOOKS / "01_getting_started.ipynb").read_bytes() == stored

    text = outputs_text(notebook)
    assert f"working in {tmp_path.name}" in text, "the notebook should work in the folder it is run from"
    assert str(tmp_path) not in text, "outputs name files relative to the working folder, not by a machine's path"
    assert "best on validation:" in text and "from its Private score" in text
    assert (tmp_path / "data" / "practice" / "competition.json").is_file()
    assert list((tmp_path / "submissions" / "practice").glob("*.csv"))
    assert (tmp_path / "leaderboard" / "practice.html").is_file()
    assert any((tmp_path / "models" / "practice").glob("*-notebook/manifest.json"))
    assert "same predictions after reloading: True" in text
    assert images(notebook) >= 6, "every plot of the notebook should render inline"
    assert seconds < 300, f"notebook 01 took {seconds:.0f} s with the test sizes: expected under 5 minutes"


def test_kernel_is_this_python(tmp_path, kernel):
    """The notebooks run on the interpreter that runs the tests, not some other Python."""
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("import sys, kit; print(sys.executable); print(kit.__file__)")]
    path = tmp_path / "which.ipynb"
    nbformat.write(notebook, path)
    text = outputs_text(run_notebook(path, tmp_path, kernel))
    assert Path(text.split()[0]).resolve() == Path(sys.executable).resolve()
    assert Path(text.split()[1]).resolve().is_relative_to(REPO)


@pytest.mark.slow
def test_massbank_notebook_prepares_a_library(tmp_path, kernel, monkeypatch):
    """Notebook 02 up to its "## Train" section, on a tiny library with real structures."""
    from kit.data.spectra import save_spectra

    library = save_spectra(structure_spectra(per_molecule=4), tmp_path / "tiny_library.mgf")
    for key, value in SMALL.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("KIT_LIBRARY", str(library))
    notebook = run_notebook(NOTEBOOKS / "02_massbank.ipynb", tmp_path, kernel, stop_before="## Train")

    comp = json.loads((tmp_path / "data" / "tiny_library" / "competition.json").read_text())
    assert comp["split"]["test_molecules"] >= 1
    assert "GPU" in outputs_text(notebook)
