"""Shared fixtures: where the MassBank files are, the ``kit`` command run in-process, and small spectrum builders."""
import contextlib
import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MASSBANK = SHARED / "data" / "massbank"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Property tests in CI draw the same examples on every run (derandomize), so a red build
# is a real failure, not an unlucky draw; locally they keep exploring new examples.
settings.register_profile("ci", derandomize=True, deadline=None, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@dataclass(frozen=True)
class CliRun:
    """What a ``kit`` run left: exit code, standard output and standard error (as ``CompletedProcess``)."""

    returncode: int
    stdout: str
    stderr: str


def kit_cli(*args, cwd=None, env=None):
    """Run ``kit ARGS`` in this process through :func:`kit.cli.main`; return a :class:`CliRun`.

    ``cwd`` is the working folder for the run; ``env`` overrides environment variables for
    the run (``None`` as a value removes one). Both are restored afterwards. argparse's
    own refusals (``SystemExit``) count as the exit code, as they would in a shell.
    """
    from kit.cli import main

    out, err = io.StringIO(), io.StringIO()
    before_cwd, before_env = os.getcwd(), dict(os.environ)
    try:
        if cwd is not None:
            os.chdir(cwd)
        for key, value in (env or {}).items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = str(value)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(arg) for arg in args])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.chdir(before_cwd)
        os.environ.clear()
        os.environ.update(before_env)
    return CliRun(int(code or 0), out.getvalue(), err.getvalue())


def kit_cli_subprocess(*args, cwd, env=None, timeout=600):
    """Run the installed command, ``python -m kit ARGS``, in a child process (smoke tests only)."""
    return subprocess.run([sys.executable, "-m", "kit", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=timeout)


def massbank_file(mode):
    """Path to ``massbank_<mode>.mgf.gz`` beside the repository, or skip the test."""
    path = MASSBANK / f"massbank_{mode}.mgf.gz"
    if not path.is_file():
        pytest.skip(f"{path} not found: the MassBank data lives in ../shared/data/massbank beside the repository (CI has it)")
    return path


# Small real molecules: enough variety for every Tanimoto bin.
SMILES = [
    "CCO", "CCCO", "CCCCO", "CC(=O)O", "CCC(=O)O", "c1ccccc1", "c1ccccc1O", "c1ccccc1N",
    "Cc1ccccc1", "c1ccc2ccccc2c1", "OC(=O)c1ccccc1", "CC(=O)Nc1ccc(O)cc1", "CN1CCC[C@H]1c1cccnc1",
    "CC(C)Cc1ccc(C(C)C(=O)O)cc1", "COc1ccc2[nH]cc(CCN)c2c1", "NCCc1ccc(O)c(O)c1", "OCC1OC(O)C(O)C(O)C1O",
    "CCN(CC)CC", "C1CCCCC1", "O=C(O)CCC(=O)O",
]
# Salts, hydrates and charged forms of molecules of SMILES: another InChIKey (another
# molecule), the same fingerprint.
TWINS = ["CC(=O)O.[Na+]", "CCO.Cl", "c1ccccc1O.O", "CCCCO.[K]", "c1ccccc1N.Cl", "CCN(CC)CC.Cl", "CCCO.[Na+]"]


def make_spectrum(mz, intensities, **metadata):
    """A matchms Spectrum from lists, metadata as keyword arguments."""
    from matchms import Spectrum

    return Spectrum(
        mz=np.asarray(mz, dtype=float), intensities=np.asarray(intensities, dtype=float),
        metadata=metadata, metadata_harmonization=False,
    )


def structure_spectra(smiles=SMILES, per_molecule=3, seed=0, n_peaks=8):
    """Spectra with real structures (SMILES, InChIKey) and seeded synthetic peaks."""
    from rdkit import Chem
    from rdkit.Chem.Descriptors import ExactMolWt

    rng = np.random.default_rng(seed)
    out = []
    for m, smi in enumerate(smiles):
        mol = Chem.MolFromSmiles(smi)
        precursor = ExactMolWt(mol) + 1.007276
        base = np.sort(rng.uniform(20, max(precursor - 5, 40), n_peaks))
        for k in range(per_molecule):
            mz = np.sort(base + rng.normal(0, 0.002, n_peaks))
            out.append(make_spectrum(
                mz, rng.uniform(0.05, 1.0, n_peaks), spectrum_id=f"T{m:03d}-{k}", smiles=smi,
                inchikey=Chem.MolToInchiKey(mol), compound_name=f"compound {m}", precursor_mz=precursor,
                ionmode="positive", charge=1, adduct="[M+H]+",
            ))
    return out


@pytest.fixture
def spectra():
    return structure_spectra()


@pytest.fixture
def calls_to(monkeypatch):
    """``calls_to(module, "name")``: replace ``module.name`` by a recorder; return its list of keyword arguments."""

    def replace(module, name):
        calls = []
        monkeypatch.setattr(module, name, lambda **kwargs: calls.append(kwargs))
        return calls

    return replace


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A fresh working folder: data/, models/, submissions/ and leaderboard/ land in it."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A work folder with a tiny competition, ``data/tiny`` (kit.models.training, kit.models.prediction)."""
    from kit.competition.prepare import prepare_competition
    from kit.data.spectra import save_spectra

    work = tmp_path_factory.mktemp("work")
    library = save_spectra(structure_spectra(per_molecule=4), work / "lib.mgf")
    prepare_competition(library, name="tiny", out=work / "data", test_fraction=0.25, pairs_per_bin=20, progress=False)
    return work


def load_bench_script(name):
    """A script of ``bench/`` (``bench/<name>.py``) imported as a module, for its tests."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
