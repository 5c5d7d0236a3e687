"""The peers benchmark's own code paths (bench/peers.py), on a tiny competition.

The peer packages (ms2deepscore, PyTorch) are not needed: their row must come out as a
clear "skipped" line, never a crash. The matchms rows and the mean rung run for real,
each in its own subprocess, as in the full benchmark.
"""
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import load_bench_script, structure_spectra
from kit.competition.prepare import prepare_competition
from kit.data.spectra import save_spectra

SKIP_LINE = "skipped: ms2deepscore not installed (make bench-env)"


peers = load_bench_script("peers")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny competition folder."""
    work = tmp_path_factory.mktemp("peers")
    library = save_spectra(structure_spectra(per_molecule=4), work / "lib.mgf")
    prepare_competition(library, name="tiny", out=work / "data", test_fraction=0.25, pairs_per_bin=20, progress=False)
    return work / "data" / "tiny"


def row(name, **values):
    spec = peers.ROWS[name]
    return peers.Row(name=name, label=spec.label, **values)


@pytest.mark.slow
def test_harness_runs_matchms_rows_and_mean_and_skips_a_missing_ms2deepscore(tiny, tmp_path):
    # An interpreter without ms2deepscore stands for the peers' environment; where the
    # test environment has it, a missing interpreter gives the same skipped row.
    has_ms2ds = importlib.util.find_spec("ms2deepscore") is not None
    bench_python = tmp_path / "no-venv" / "bin" / "python" if has_ms2ds else Path(sys.executable)
    results, plot, work = tmp_path / "RESULTS.md", tmp_path / "per_bin.png", tmp_path / "work"
    start = time.perf_counter()
    code = peers.main([
        "--competition", str(tiny), "--work", str(work),
        "--rows", "matchms-cosine,matchms-modified-cosine,mean,ms2deepscore,ms2deepscore-metadata",
        "--kit-python", sys.executable, "--bench-python", str(bench_python),
        "--set", "mean.n_pairs=200", "--results", str(results), "--plot", str(plot),
    ])
    assert code == 0
    # A guard against timing loops that run away (a quiet 2-core machine takes well under a
    # minute), loose enough for a machine shared with other jobs.
    assert time.perf_counter() - start < 400

    saved = json.loads((work / "results.json").read_text())
    rows = {r["name"]: r for r in saved["rows"]}
    assert list(rows) == ["matchms-cosine", "matchms-modified-cosine", "mean", "ms2deepscore", "ms2deepscore-metadata"]
    for name in ("matchms-cosine", "matchms-modified-cosine", "mean"):
        r = rows[name]
        assert r["status"] == "ok", r["message"]
        assert 0 < r["public"] < 1 and 0 < r["private"] < 1 and 0 < r["private_binned"] < 1
        assert r["timing"]["pairs_per_s"] > 0 and r["timing"]["spectra_per_s"] > 0
        assert r["peak_predict_gib"] > 0 and r["commands"]
        assert set(r["per_bin"]) == {f"{k / 10:.1f}-{(k + 1) / 10:.1f}" for k in range(10)}
    assert rows["matchms-cosine"]["train_seconds"] == 0
    assert rows["mean"]["train_seconds"] >= 0 and rows["mean"]["peak_train_gib"] > 0
    assert rows["mean"]["commands"][0].startswith("kit train mean --competition")
    # kit.scoring.scorer's split of the Private rows by private/pair_details.csv.
    assert 0 <= rows["mean"]["private_same_molecule"] < 1 and 0 <= rows["mean"]["private_different_molecule"] < 1
    assert rows["mean"]["details"]["same_molecule_rows"] > 0
    assert rows["ms2deepscore"]["status"] == rows["ms2deepscore-metadata"]["status"] == "skipped"

    text = results.read_text()
    assert text.count(SKIP_LINE) == 2
    assert "| matchms CosineGreedy (raw) |" in text and "| kit mean |" in text
    assert "Private same-molecule RMSE | Private different-molecule RMSE |" in text
    assert f"| kit mean | {rows['mean']['public']:.5f} | {rows['mean']['private']:.5f} | " in text
    assert f"{rows['mean']['private_same_molecule']:.5f} | {rows['mean']['private_different_molecule']:.5f} |" in text
    assert "Goals not evaluated" in text and "siamese: not run" in text
    assert "Unfinished" not in text
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The raw matchms scores are the submission: same values as scoring the pairs here.
    sub = Path(rows["matchms-cosine"]["details"]["submission"])
    assert sub.is_file() and sub.read_text().startswith("id,similarity\n")

    # Re-rendering from results.json gives the same report.
    again = tmp_path / "again.md"
    assert peers.main(["--render", str(work / "results.json"), "--results", str(again), "--plot", str(plot)]) == 0
    assert again.read_text() == text


def test_missing_peers_environment_is_a_skipped_row(tiny, tmp_path):
    harness = peers.Harness(tiny, tmp_path, kit_python=sys.executable, bench_python=tmp_path / "nowhere" / "python")
    result = harness.run("ms2deepscore")
    assert (result.status, result.message) == ("skipped", "ms2deepscore not installed (make bench-env)")
    assert result.commands == []


def test_worker_reports_missing_ms2deepscore(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(peers, "import_ms2deepscore", lambda: None)
    assert peers.worker_ms2deepscore_train(str(tiny), tmp_path, 10, 0, {}) == {"skipped": peers.MS2DS_MISSING}
    assert peers.worker_ms2deepscore_predict(str(tiny), tmp_path) == {"skipped": peers.MS2DS_MISSING}


def test_a_failing_row_is_reported_and_does_not_stop_the_others(tiny, tmp_path):
    harness = peers.Harness(tiny, tmp_path, kit_python=sys.executable, bench_python=sys.executable,
                            overrides={"mean": ["--no-such-option", "1"]})
    result = harness.run("mean")
    assert result.status == "failed"
    assert "kit train failed" in result.message and "no-such-option" in result.message
    text = peers.render_markdown([result], _meta(), "plot.png")
    assert "failed: kit train failed" in text


def _meta():
    return {"command": "python bench/peers.py", "machine": "test", "started": "now", "seed": 0,
            "competition": {"name": "tiny", "how": "test", "train_spectra": 1, "test_spectra": 1, "train_molecules": 1,
                            "test_molecules": 1, "pairs": 1, "public_rows": 1, "private_rows": 1}}


def test_goal_lines_say_met_or_not_met_with_the_numbers():
    ours = row("siamese", private=0.20, train_seconds=500.0, timing={"embed_spectra_per_s": 9000.0, "spectra_per_s": 8000.0})
    peer = row("ms2deepscore", private=0.21, train_seconds=505.0,
               timing={"embed_spectra_per_s": 3000.0, "spectra_per_s": 3000.0},
               details={"budget_seconds": 500.0, "stopped_by": "time budget", "epochs_run": 7})
    lines = peers.goal_lines([ours, peer])
    assert "**met**" in lines[0] and "0.20000 (siamese) vs 0.21000" in lines[0] and "7 epoch(s)" in lines[0]
    assert "**met**" in lines[1] and "3.00x" in lines[1]
    ours.private, ours.timing["embed_spectra_per_s"] = 0.25, 5000.0
    lines = peers.goal_lines([ours, peer])
    assert "**NOT met**" in lines[0] and "+0.04000" in lines[0]
    assert "**NOT met**" in lines[1] and "1.67x" in lines[1]
    assert "Per unit of training time" in lines[2]
    # Three lines per ms2deepscore row; a skipped one says why in one.
    skipped = row("ms2deepscore-default", status="skipped", message=peers.MS2DS_MISSING)
    lines = peers.goal_lines([ours, peer, skipped])
    assert len(lines) == 4 and f"skipped ({peers.MS2DS_MISSING})" in lines[3]
    assert "siamese: not run" in peers.goal_lines([peer])[0]


@pytest.mark.parametrize("ours, peer, mean, verdict", [
    ((0.17, 300.0), (0.19, 310.0), None, "**the siamese is better**, as low an RMSE or lower in no more time"),
    ((0.19, 300.0), (0.17, 290.0), None, "**ms2deepscore (peaks) is better**, as low an RMSE or lower"),
    # Each wins one count: the RMSE below the mean rung's per training minute decides.
    ((0.18, 300.0), (0.17, 900.0), 0.29, "**the siamese is better per unit of training time**"),
    ((0.18, 300.0), (0.10, 400.0), 0.29, "**ms2deepscore (peaks) is better per unit of training time**"),
    ((0.18, 300.0), (0.17, 900.0), None, "run the mean row to weigh RMSE against time"),
])
def test_training_time_line_says_which_is_better_per_unit_of_training_time(ours, peer, mean, verdict):
    siamese = row("siamese", private=ours[0], train_seconds=ours[1], details={"epochs_run": 12})
    rival = row("ms2deepscore", private=peer[0], train_seconds=peer[1],
                details={"epochs_run": 1, "budget_seconds": 300.0})
    baseline = None if mean is None else row("mean", private=mean, train_seconds=1.0)
    line = peers.training_time_line(siamese, rival, baseline)
    assert verdict in line
    assert f"{ours[0]:.5f} in {ours[1]:,.0f} s, 12 epochs (siamese)" in line
    assert f"{peer[0]:.5f} in {peer[1]:,.0f} s, 1 epoch within its 300 s budget:" in line
    if mean is not None and "per training minute" in line:
        gain = (mean - ours[0]) / (ours[1] / 60)
        assert f"{gain:.5f} (siamese)" in line


def test_ms2deepscore_rows_ask_for_their_network_size_label_and_metadata(tiny, tmp_path, monkeypatch):
    harness = peers.Harness(tiny, tmp_path, kit_python=sys.executable, bench_python=sys.executable,
                            ms2deepscore_budget=5)
    calls = {}

    def worker(python, kind, row, result_name, *extra, record=True):
        calls[row.name] = dict(zip(extra[::2], extra[1::2]))
        return peers.Proc([], 0.0, 0.0, 1, "", "stopped here"), None

    monkeypatch.setattr(harness, "worker", worker)
    for name in peers.MS2DS_ROWS:
        assert harness.run(name).status == "failed"
    assert {name: c["--network"] for name, c in calls.items()} == {
        "ms2deepscore": "siamese", "ms2deepscore-metadata": "siamese", "ms2deepscore-default": "ms2deepscore"}
    settings = {name: json.loads(c["--settings"]) for name, c in calls.items()}
    assert settings["ms2deepscore"] == {}
    assert settings["ms2deepscore-default"] == settings["ms2deepscore-metadata"] == {
        "additional_metadata": peers.MS2DS_METADATA}
    assert {c["--budget"] for c in calls.values()} == {"5.0"}


@pytest.mark.parametrize("size, expected", [("siamese", ((500, 500), 200)), ("ms2deepscore", None)])
def test_ms2deepscore_settings_network_size(size, expected):
    pytest.importorskip("ms2deepscore")
    from ms2deepscore import SettingsMS2Deepscore

    settings, chosen = peers.ms2deepscore_settings(0, {"batch_size": 8}, size)
    if expected is None:  # ms2deepscore's own defaults, whatever its version says they are
        expected = (tuple(SettingsMS2Deepscore().base_dims), SettingsMS2Deepscore().embedding_dim)
        assert "base_dims" not in chosen
    assert (tuple(settings.base_dims), settings.embedding_dim) == expected
    assert settings.fingerprint_nbits == 2048 and settings.batch_size == 8
    with pytest.raises(ValueError, match="network size"):
        peers.ms2deepscore_settings(0, {}, "huge")


class FakeBatches:
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __iter__(self):
        return iter(range(self.n))


def test_time_budget_stops_between_epochs():
    batches = peers.BudgetedBatches(FakeBatches(3), deadline=time.perf_counter() + 3600)
    assert list(batches) == [0, 1, 2] and list(batches) == [0, 1, 2] and len(batches) == 3
    late = peers.BudgetedBatches(FakeBatches(3), deadline=time.perf_counter() - 1)
    assert list(late) == [0]  # the first epoch gets one batch, then ends at the deadline
    assert late.cut_short == 1
    with pytest.raises(peers.BudgetSpent):
        iter(late)


def test_time_budget_ends_a_long_epoch_at_the_deadline():
    class SlowBatches(FakeBatches):
        def __iter__(self):
            for i in range(self.n):
                time.sleep(0.05)
                yield i

    batches = peers.BudgetedBatches(SlowBatches(100), deadline=time.perf_counter() + 0.3)
    started = time.perf_counter()
    taken = list(batches)
    assert 2 <= len(taken) < 20 and time.perf_counter() - started < 1.5
    assert batches.cut_short == 1


def test_spectra_per_molecule_keeps_at_most_k_per_inchikey_seeded():
    spectra = structure_spectra(per_molecule=3)
    one = peers.spectra_per_molecule(spectra, 1, seed=0)
    keys = [s.get("inchikey")[:14] for s in one]
    assert len(one) == len(set(keys)) == len({s.get("inchikey")[:14] for s in spectra})
    again = peers.spectra_per_molecule(spectra, 1, seed=0)
    assert [s.get("spectrum_id") for s in again] == [s.get("spectrum_id") for s in one]
    assert len(peers.spectra_per_molecule(spectra, 5, seed=0)) == len(spectra)


def test_cosine_of_pairs_and_distinct_spectra():
    vectors = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0], [0.0, 0.0]])
    scores = peers.cosine_of_pairs(vectors, np.array([0, 0, 2, 3]), np.array([1, 2, 2, 0]))
    np.testing.assert_allclose(scores, [0.0, np.sqrt(0.5), 1.0, 0.0], atol=1e-6)
    import pandas as pd

    spectra = structure_spectra(per_molecule=1)[:4]
    ids = [s.get("spectrum_id") for s in spectra]
    pairs = pd.DataFrame({"spectrum_id_a": [ids[3], ids[1]], "spectrum_id_b": [ids[1], ids[3]]})
    used, a, b = peers.distinct_spectra(spectra, pairs)
    assert [s.get("spectrum_id") for s in used] == [ids[1], ids[3]]
    assert a.tolist() == [1, 0] and b.tolist() == [0, 1]


def test_overrides_split_kit_options_from_ms2deepscore_settings():
    out = peers.overrides(["siamese.epochs=5", "siamese.learning_rate=0.0005", "ms2deepscore.batch_size=8",
                           "ms2deepscore.loss_function=mse", "blend.siamese_epochs=2",
                           "ms2deepscore-default.epochs=3"])
    assert out == {"siamese": ["--epochs", "5", "--learning-rate", "0.0005"],
                   "ms2deepscore": {"batch_size": 8, "loss_function": "mse"},
                   "blend": ["--siamese-epochs", "2"], "ms2deepscore-default": {"epochs": 3}}
    with pytest.raises(SystemExit, match="ROW.OPTION=VALUE"):
        peers.overrides(["nothing"])
