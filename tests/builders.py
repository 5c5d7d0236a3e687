"""Small competition folders and submission files for tests (no spectra needed)."""
import hashlib
import json
from pathlib import Path

import numpy as np


def make_competition(root, n_pairs=60, seed=0, name="practice", public_fraction=0.3, max_daily_submissions=5,
                     truth=None, ids=None):
    """Write a tiny competition folder ``root/<name>`` and return its path.

    Truths cover every Tanimoto bin; Usage is seeded, like ``kit prepare``'s. The spectra
    files are empty (scoring never reads them).
    """
    rng = np.random.default_rng(seed)
    folder = Path(root) / name
    (folder / "private").mkdir(parents=True, exist_ok=True)
    ids = np.arange(n_pairs) if ids is None else np.asarray(ids)
    if truth is None:
        truth = np.round(rng.random(n_pairs), 6)
        truth[: min(n_pairs, 10)] = np.linspace(0.05, 0.95, 10)[: min(n_pairs, 10)]
    truth = np.asarray(truth, dtype=float)
    n_public = max(1, int(round(public_fraction * n_pairs)))
    usage = np.array(["Private"] * n_pairs, dtype=object)
    usage[rng.permutation(n_pairs)[:n_public]] = "Public"
    (folder / "train.mgf").write_text("")
    (folder / "test.mgf").write_text("")
    _write_csv(folder / "test_pairs.csv", ["id", "spectrum_id_a", "spectrum_id_b"],
               [(i, f"S{2 * k}", f"S{2 * k + 1}") for k, i in enumerate(ids)])
    _write_csv(folder / "sample_submission.csv", ["id", "similarity"], [(i, 0.5) for i in ids])
    _write_csv(folder / "private" / "solution.csv", ["id", "similarity", "Usage"],
               [(i, repr(float(t)), u) for i, t, u in zip(ids, truth, usage)])
    files = ["train.mgf", "test.mgf", "test_pairs.csv", "sample_submission.csv", "private/solution.csv"]
    metadata = {
        "name": name,
        "kit_version": "0.1.0",
        "seed": seed,
        "metric": {"name": "rmse", "direction": "minimize", "decimals": 5, "target": "similarity"},
        "public_fraction": public_fraction,
        "max_daily_submissions": max_daily_submissions,
        "files": {f: hashlib.sha256((folder / f).read_bytes()).hexdigest() for f in files},
    }
    (folder / "competition.json").write_text(json.dumps(metadata, indent=2))
    return folder


def rehash(folder):
    """Record the current hashes of the files ``competition.json`` lists (after a test edits one)."""
    path = folder / "competition.json"
    metadata = json.loads(path.read_text())
    metadata["files"] = {f: hashlib.sha256((folder / f).read_bytes()).hexdigest() for f in metadata["files"]}
    path.write_text(json.dumps(metadata, indent=2))
    return folder


def read_solution(folder):
    """``(ids, truth, usage)`` arrays of a competition built by :func:`make_competition`."""
    import pandas as pd

    frame = pd.read_csv(Path(folder) / "private" / "solution.csv")
    return frame["id"].to_numpy(), frame["similarity"].to_numpy(), frame["Usage"].to_numpy()


def write_submission_file(path, ids, values, header="id,similarity", newline="\n"):
    """Write a submission CSV from ids and values (values written with repr)."""
    lines = [header] + [f"{i},{v!r}" if isinstance(v, float) else f"{i},{v}" for i, v in zip(ids, values)]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(newline.join(lines) + newline)
    return path


def perfect_submission(folder, path, noise=0.0, seed=0):
    """A valid submission for a competition: truth plus optional noise, rows shuffled."""
    ids, truth, _ = read_solution(folder)
    rng = np.random.default_rng(seed)
    values = truth + noise * rng.standard_normal(truth.size)
    order = rng.permutation(ids.size)
    return write_submission_file(path, ids[order], [float(v) for v in values[order]])


def _write_csv(path, header, rows):
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(",".join(header) + "\n")
        for row in rows:
            handle.write(",".join(str(x) for x in row) + "\n")
