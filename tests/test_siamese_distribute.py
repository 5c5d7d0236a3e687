"""The siamese rung under tf.distribute strategies, on CPUs.

Logical CPU devices and multi-worker collectives must be set up before TensorFlow starts,
so each strategy trains in a process of its own (tests/siamese_distribute_run.py); this
process loads what they saved, without a strategy.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import kit.models
from kit.errors import UserError

siamese = pytest.importorskip("kit.models.siamese")
from test_models_siamese import TINY, make_spectra, random_pairs  # noqa: E402

RUN = Path(__file__).with_name("siamese_distribute_run.py")
TIMEOUT = 300


def start(mode, out, tf_config=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    out.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, str(RUN), mode, str(out)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def finish(processes):
    """Wait for every process; fail with the tail of the output of any that failed."""
    try:
        outputs = [p.communicate(timeout=TIMEOUT)[0] for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, output in zip(processes, outputs):
        assert p.returncode == 0, output[-3000:]


def free_ports(n):
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def loaded_predictions(folder):
    """Predictions of a saved model loaded here, with no strategy."""
    spectra = make_spectra()
    return kit.models.load(folder).predict(spectra, random_pairs(spectra))


@pytest.mark.slow
def test_mirrored_over_two_logical_cpus_trains_and_predicts_the_same_without_a_strategy(tmp_path):
    finish([start("mirrored", tmp_path)])
    info = json.loads((tmp_path / "info-1.json").read_text())
    assert info["n_replicas"] == 2 and info["chief"] is True
    assert set(info["history"]) >= {"loss", "rmse", "val_loss", "val_rmse"}
    assert all(np.isfinite(v[0]) for v in info["history"].values())
    # The square-root rule on the global batch: two replicas, sqrt(2) x the rate.
    assert info["history"]["learning_rate"][0] == pytest.approx(siamese.SiameseModel().learning_rate * np.sqrt(2), rel=1e-6)
    trained = np.load(tmp_path / "pred-1.npy")
    assert ((0 <= trained) & (trained <= 1)).all()
    loaded = kit.models.load(tmp_path / "model")
    assert loaded.n_replicas_ == 2
    np.testing.assert_allclose(loaded_predictions(tmp_path / "model"), trained, atol=1e-5)


@pytest.mark.slow
def test_two_workers_train_one_model_and_only_the_chief_saves(tmp_path):
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    outs = [tmp_path / f"worker{i}" for i in range(2)]
    finish([start("multiworker", out, {"cluster": cluster, "task": {"type": "worker", "index": i}})
            for i, out in enumerate(outs)])
    chief = json.loads((outs[0] / "info-1.json").read_text())
    other = json.loads((outs[1] / "info-0.json").read_text())
    try:
        assert chief["n_replicas"] == other["n_replicas"] == 2
        assert chief["saved"] == str(outs[0] / "model") and (outs[0] / "model" / "manifest.json").is_file()
        # The other worker wrote to a temporary folder, not where it was asked to.
        assert not (outs[1] / "model").exists() and Path(other["saved"]).parent != outs[1]
        # One model trained together: the same history and the same predictions on both.
        assert chief["history"] == other["history"]
        np.testing.assert_allclose(np.load(outs[0] / "pred-1.npy"), np.load(outs[1] / "pred-0.npy"), atol=1e-6)
        np.testing.assert_allclose(loaded_predictions(outs[0] / "model"), np.load(outs[0] / "pred-1.npy"), atol=1e-5)
    finally:
        shutil.rmtree(Path(other["saved"]).parent, ignore_errors=True)


@pytest.mark.parametrize("distribute", ["mirror", "", None, 2, "AUTO"])
def test_unknown_distribute_is_refused_before_training(distribute):
    with pytest.raises(UserError, match="distribute must be one of 'auto', 'none', 'mirrored', 'multiworker', found"):
        siamese.SiameseModel(**{**TINY, "distribute": distribute}).fit(make_spectra()[:6])


@pytest.mark.parametrize("tf_config", [None, "", "not json", "[]", '{"cluster": {}}',
                                       '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "chief", "index": 0}}',
                                       '{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}',
                                       '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": "0"}}'])
def test_multiworker_without_a_usable_tf_config_is_refused(monkeypatch, tf_config):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(UserError, match="needs TF_CONFIG"):
        siamese.distribution_strategy("multiworker")


def test_without_a_gpu_auto_and_none_train_on_one_device():
    for distribute in ("auto", "none"):
        strategy, distributed, chief = siamese.distribution_strategy(distribute)
        assert strategy.num_replicas_in_sync == 1 and not distributed and chief


def test_train_help_lists_distribute_and_mixed_precision():
    from kit.models.training import rung_options

    options = {flag: meaning for flag, _, meaning in rung_options(siamese.SiameseModel)}
    assert "MultiWorkerMirroredStrategy" in options["--distribute"] and "(default: auto)" in options["--distribute"]
    assert "mixed_float16" in options["--mixed-precision"] and "(default: false)" in options["--mixed-precision"]
