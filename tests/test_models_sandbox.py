"""kit.models.sandbox: an untrusted model folder loads and predicts in a limited child process.

Each test here starts real child processes (spawned, so each imports the kit afresh):
they are few, and use the smallest saved models.
"""
import multiprocessing
import os
import signal

import numpy as np
import pytest

import kit.models
from kit.errors import UserError
from kit.models import sandbox


@pytest.fixture(scope="module")
def spectra():
    from conftest import structure_spectra

    return structure_spectra()


@pytest.fixture(scope="module")
def pairs(spectra):
    from model_builders import all_pairs

    return all_pairs(spectra, 50)


@pytest.fixture(scope="module")
def saved(tmp_path_factory, spectra):
    root = tmp_path_factory.mktemp("sandbox")
    return {
        "mean": kit.models.get("mean")(n_pairs=300).fit(spectra).save(root / "mean"),
        "gbm": kit.models.get("gbm")(n_pairs=300, max_iter=10, progress=False).fit(spectra).save(root / "gbm"),
    }


def kit_children():
    return [p for p in multiprocessing.active_children() if p.name.startswith("kit-model-")]


@pytest.mark.parametrize("name", ["mean", "gbm"])
def test_an_untrusted_load_predicts_as_the_model_does_in_process(saved, spectra, pairs, name, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    expected = kit.models.load(saved[name]).predict(spectra, pairs)
    with kit.models.load(saved[name], untrusted=True) as model:
        assert isinstance(model, sandbox.SandboxedModel) and model.name == name
        assert model.get_params()["seed"] == 0 and model.fit_seconds_ > 0
        got = model.predict(spectra, pairs)
        assert np.array_equal(got, expected) and got.dtype == np.float64
        again = model.predict(spectra, pairs.iloc[:5])
        assert np.array_equal(again, expected[:5])
        pid = model._process.pid
    assert not kit_children()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(UserError, match="closed"):
        model.predict(spectra, pairs)
    assert list(tmp_path.iterdir()) == []  # nothing written, nothing left behind


def test_the_child_runs_in_its_own_group_under_the_memory_limit(saved):
    with kit.models.load(saved["mean"], untrusted=True, memory_limit=3 << 30) as model:
        pid = model._process.pid
        assert os.getpgid(pid) == pid != os.getpgid(0)
        with open(f"/proc/{pid}/limits") as handle:
            line = next(line for line in handle if line.startswith("Max address space"))
        assert line.split()[3:5] == [str(3 << 30)] * 2


def test_limit_this_process_hides_the_gpu_and_caps_memory():
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        cuda, limit, own_group = pool.apply(_limited_child, (2 << 30,))
    assert cuda == "-1" and limit == (2 << 30, 2 << 30) and own_group


def _limited_child(memory_limit):
    import resource

    sandbox.limit_this_process(memory_limit)
    return os.environ["CUDA_VISIBLE_DEVICES"], resource.getrlimit(resource.RLIMIT_AS), os.getpgid(0) == os.getpid()


def test_the_time_limit_stops_the_child(saved):
    with pytest.raises(UserError, match=r"did not finish within 0.01 seconds .*--time-limit") as info:
        kit.models.load(saved["gbm"], untrusted=True, time_limit=0.01)
    assert "\n" not in str(info.value)
    assert not kit_children()


@pytest.mark.parametrize("sig, match", [
    (signal.SIGSEGV, "segmentation fault"),
    (signal.SIGKILL, "was killed"),
])
def test_a_child_that_dies_from_a_signal_is_one_line(saved, spectra, pairs, sig, match):
    model = kit.models.load(saved["mean"], untrusted=True)
    os.kill(model._process.pid, sig)
    model._process.join(10)  # dead before the request: sending it meets a broken pipe
    with pytest.raises(UserError, match=match) as info:
        model.predict(spectra, pairs)
    assert "\n" not in str(info.value)
    assert not kit_children()


@pytest.fixture(scope="module")
def siamese_dir(tmp_path_factory):
    from kit.models.siamese import SiameseModel
    from test_models_siamese import make_spectra

    spectra = make_spectra()
    model = SiameseModel(hidden_units=(16,), embedding_dim=8, pairs_per_epoch=128, validation_pairs=64, epochs=1,
                         batch_size=32, validation_fraction=0.25, lr_patience=1, verbose=0, seed=0).fit(spectra)
    return model.save(tmp_path_factory.mktemp("siamese") / "siamese"), spectra


def test_the_siamese_predicts_in_the_sandbox_as_in_process(siamese_dir):
    from model_builders import all_pairs

    folder, spectra = siamese_dir
    pairs = all_pairs(spectra, 40)
    with kit.models.load(folder, untrusted=True) as model:
        got = model.predict(spectra, pairs)
    np.testing.assert_allclose(got, kit.models.load(folder).predict(spectra, pairs), atol=1e-6)


def test_too_little_memory_for_tensorflow_is_one_line(siamese_dir):
    with pytest.raises(UserError, match="memory limit of 1 GiB") as info:
        kit.models.load(siamese_dir[0], untrusted=True, memory_limit=1 << 30)
    assert "\n" not in str(info.value) and "--memory-limit" in str(info.value)
    assert not kit_children()


def test_ctrl_c_kills_the_child(saved):
    def interrupt(*_):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        with pytest.raises(KeyboardInterrupt):
            kit.models.load(saved["gbm"], untrusted=True, time_limit=300)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert not kit_children()


def test_a_forged_folder_is_refused_before_any_child(saved, tmp_path):
    import shutil

    import skops.io as sio

    folder = tmp_path / "gbm"
    shutil.copytree(saved["gbm"], folder)
    model = kit.models.load(folder)
    model.regressor_._predictors[0][0].nodes["left"][0] = 0
    sio.dump(model, folder / "model.skops")
    with pytest.raises(UserError, match="children must come after it"):
        kit.models.load(folder, untrusted=True)
    assert not kit_children()


def test_limits_apply_only_to_untrusted_loads(saved):
    with pytest.raises(TypeError, match="untrusted=True"):
        kit.models.load(saved["mean"], memory_limit=1 << 30)
    with pytest.raises(UserError, match="below"):
        kit.models.load(saved["mean"], untrusted=True, memory_limit=1 << 20)


@pytest.mark.parametrize("text, expected", [
    ("6GiB", 6 << 30), ("6 GiB", 6 << 30), ("4g", 4 * 10**9), ("6000MB", 6 * 10**9), ("4096", 4 << 30),
    ("1.5GiB", 3 << 29),
])
def test_parse_size(text, expected):
    assert sandbox.parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "lots", "-4GiB", "4 parsecs", "100MB", "1e9", "nan", "4GiB; rm -rf /"])
def test_parse_size_refuses(text):
    with pytest.raises(UserError, match="memory limit"):
        sandbox.parse_size(text)


@pytest.mark.parametrize("text, expected", [("600", 600.0), ("90s", 90.0), ("10m", 600.0), ("1h", 3600.0),
                                            ("0.5", 0.5)])
def test_parse_duration(text, expected):
    assert sandbox.parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "0", "soon", "-1", "inf", "10 days"])
def test_parse_duration_refuses(text):
    with pytest.raises(UserError, match="time limit"):
        sandbox.parse_duration(text)
