"""kit.write_submission: the file, its manifest, and refusing bad predictions before writing."""
import json
import re

import numpy as np
import pandas as pd
import pytest

import kit
from builders import make_competition, read_solution
from kit.scoring.writer import describe_model, git_commit


class TinyModel:
    """A model following the kit's (scikit-learn) conventions."""

    name = "tiny"

    def __init__(self, alpha=0.5, seed=7):
        self.alpha = alpha
        self.seed = seed

    def get_params(self, deep=True):
        return {"alpha": self.alpha, "seed": self.seed}


@pytest.fixture
def comp(tmp_path):
    return kit.load_competition(make_competition(tmp_path / "data", n_pairs=40, seed=1))


def test_writes_csv_and_manifest(tmp_path, comp):
    model = TinyModel()
    model.fit_seconds_ = 1.25
    model.validation_score_ = {"rmse": 0.2, "binned_rmse": 0.25}
    pred = np.linspace(0, 1, 40)
    path = kit.write_submission(comp, pred, model=model, out_dir=tmp_path / "subs", participant="ann")

    assert re.fullmatch(r"\d{8}T\d{6}Z_tiny\.csv", path.name)
    frame = pd.read_csv(path)
    assert list(frame.columns) == ["id", "similarity"]
    assert frame["id"].tolist() == comp.test_pairs["id"].tolist()
    np.testing.assert_array_equal(frame["similarity"].to_numpy(), pred)  # no precision lost

    manifest = json.loads(path.with_suffix(".json").read_text())
    assert manifest["model"] == {"name": "tiny", "class": f"{__name__}.TinyModel", "params": {"alpha": 0.5, "seed": 7}}
    assert manifest["seed"] == 7
    assert manifest["validation_score"] == {"rmse": 0.2, "binned_rmse": 0.25}
    assert manifest["training_seconds"] == 1.25
    assert manifest["kit_version"] == kit.__version__
    assert "git_commit" in manifest
    assert manifest["competition_files"] == comp.file_hashes and "test_pairs.csv" in manifest["competition_files"]
    assert manifest["participant"] == "ann" and manifest["rows"] == 40
    import hashlib

    assert manifest["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, path.with_suffix(".json").name])


def test_default_folder_is_submissions_competition(tmp_path, comp, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = kit.write_submission(comp, np.full(40, 0.5))
    assert path.parent == tmp_path / "submissions" / "practice"
    assert path.name.endswith("_model.csv")


def test_written_file_scores_like_the_predictions(tmp_path, comp):
    ids, truth, _ = read_solution(comp.path)
    order = np.argsort(ids)
    path = kit.write_submission(comp, truth[order], model="oracle", out_dir=tmp_path)
    result = kit.score_submission(path, comp)
    assert result.public == 0.0 and result.model == "oracle"


def test_dataframe_predictions_are_reordered(tmp_path, comp):
    ids = comp.test_pairs["id"].to_numpy()
    frame = pd.DataFrame({"id": ids[::-1], "similarity": ids[::-1] / 100})
    path = kit.write_submission(comp, frame, model="df", out_dir=tmp_path)
    written = pd.read_csv(path)
    assert written["id"].tolist() == ids.tolist()
    np.testing.assert_allclose(written["similarity"], ids / 100)


def test_same_second_gets_a_new_name(tmp_path, comp):
    from datetime import datetime, timezone

    now = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    a = kit.write_submission(comp, np.zeros(40), model="m", out_dir=tmp_path, now=now)
    b = kit.write_submission(comp, np.zeros(40), model="m", out_dir=tmp_path, now=now)
    assert a.name == "20250102T030405Z_m.csv" and b.name == "20250102T030405Z_m-2.csv"


@pytest.mark.parametrize(
    "predictions, words",
    [
        (np.zeros(39), "expected 40 values"),
        (np.zeros(41), "expected 40 values"),
        (np.r_[np.zeros(39), np.nan], "NaN or infinite"),
        (np.r_[np.inf, np.zeros(39)], "NaN or infinite"),
        (["a"] * 40, "not numeric"),
        (pd.DataFrame({"id": range(40), "score": 0.0}), "columns id and similarity"),
        (pd.DataFrame({"id": list(range(39)) + [0], "similarity": 0.0}), "distinct ids"),
    ],
)
def test_bad_predictions_are_refused_before_writing(tmp_path, comp, predictions, words):
    out = tmp_path / "subs"
    with pytest.raises(kit.SubmissionError, match=words):
        kit.write_submission(comp, predictions, model="m", out_dir=out)
    assert not out.exists() or not any(out.iterdir())


def test_out_of_range_predictions_warn_but_are_written(tmp_path, comp):
    with pytest.warns(UserWarning, match="outside"):
        path = kit.write_submission(comp, np.full(40, 1.5), model="m", out_dir=tmp_path)
    assert path.is_file()


def test_a_failed_write_leaves_no_csv(tmp_path, comp, monkeypatch):
    import kit.scoring.writer as submission
    from kit.fileio import atomic_path

    def failing(target, text, encoding="utf-8"):
        with atomic_path(target) as tmp:
            tmp.write_text(text[: len(text) // 2], encoding=encoding)
            if str(target).endswith(".csv"):
                raise OSError("disk full")
        return target

    monkeypatch.setattr(submission, "write_text_atomic", failing)
    with pytest.raises(OSError):
        kit.write_submission(comp, np.zeros(40), model="m", out_dir=tmp_path / "s")
    leftovers = [p.name for p in (tmp_path / "s").iterdir()]
    assert not any(name.endswith(".csv") or ".tmp" in name for name in leftovers)


def test_describe_model_handles_names_and_odd_params():
    assert describe_model(None)["model"]["name"] == "model"
    info = describe_model(TinyModel(alpha=np.float64(0.1), seed=np.int64(3)))
    assert info["model"]["params"] == {"alpha": 0.1, "seed": 3}
    assert json.dumps(info)


def test_git_commit_outside_a_repository_is_none(tmp_path):
    assert git_commit(tmp_path) is None


@pytest.mark.parametrize("value", [1e308, -1e308, 1.7e308, 2e6])
def test_values_that_would_overflow_the_metric_are_not_written(tmp_path, comp, value):
    predictions = np.full(40, 0.5)
    predictions[3] = value
    with pytest.raises(kit.SubmissionError, match=r"\[-1e6, 1e6\].*row 3"):
        kit.write_submission(comp, predictions, model="m", out_dir=tmp_path / "s")
    assert not (tmp_path / "s").exists() or not list((tmp_path / "s").iterdir())


def test_written_files_are_readable_by_others_under_the_umask(tmp_path, comp):
    import os
    import stat

    old = os.umask(0o022)
    try:
        path = kit.write_submission(comp, np.full(40, 0.5), model="m", out_dir=tmp_path / "s")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert stat.S_IMODE(path.with_suffix(".json").stat().st_mode) == 0o644
