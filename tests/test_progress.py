"""Progress bars: the warm-up item does not set the first time estimate."""
import io
import re

import pytest

from kit.progress import keras_verbosity, progress


@pytest.mark.parametrize("disable", [True, False])
@pytest.mark.parametrize("items", [[], [1], list(range(5))])
def test_progress_yields_every_item(items, disable):
    assert list(progress(iter(items), total=len(items), disable=disable, file=io.StringIO())) == items


def test_first_item_time_is_left_out_of_the_rate(monkeypatch):
    clock = iter([0.0] + [100.0 + k for k in range(1000)])  # the first item takes 100 s
    monkeypatch.setattr("tqdm.std.time", lambda: next(clock))
    out = io.StringIO()
    list(progress(range(6), total=6, file=out, mininterval=0, smoothing=0))
    text = out.getvalue()
    # The clock ticks each time tqdm reads it: a few seconds per item. The 100 s of the first
    # item would show as minutes of elapsed time and of ETA.
    shown = re.findall(r"\[(\d\d:\d\d)<(\d\d:\d\d|\?)", text)
    assert len(shown) >= 6 and all(elapsed < "01:00" and (eta == "?" or eta < "01:00") for elapsed, eta in shown), text


class _Stream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


class _Closed:
    def isatty(self):
        raise ValueError("I/O operation on closed file")


@pytest.mark.parametrize("verbose, stream, expected", [
    ("auto", _Stream(True), 1),          # a terminal: the bar
    ("auto", _Stream(False), 2),         # a file or a pipe: one line per epoch
    ("auto", object(), 2),               # no isatty at all
    ("auto", _Closed(), 2),
    (0, _Stream(True), 0), (1, _Stream(False), 1), (2, _Stream(True), 2),   # a number is kept
])
def test_keras_verbosity(verbose, stream, expected):
    assert keras_verbosity(verbose, stream) == expected


def test_keras_verbosity_reads_stdout_by_default(monkeypatch):
    monkeypatch.setattr("sys.stdout", _Stream(False))
    assert keras_verbosity("auto") == 2


@pytest.mark.slow
def test_siamese_fit_prints_one_line_per_epoch_outside_a_terminal(capfd):
    pytest.importorskip("tensorflow")
    from kit.models.siamese import SiameseModel
    from model_builders import simulated_split

    train, _ = simulated_split(n_molecules=40)
    epochs = 3
    SiameseModel(hidden_units=(16,), embedding_dim=8, pairs_per_epoch=128, validation_pairs=64, epochs=epochs,
                 patience=epochs, batch_size=32, seed=0).fit(list(train))  # verbose="auto", stdout captured
    out = capfd.readouterr().out
    assert "\r" not in out and "\b" not in out and "━" not in out   # no bar redraws
    lines = [line for line in out.splitlines() if line.strip()]
    assert sum(line.startswith("Epoch ") for line in lines) == epochs
    assert sum("val_loss" in line for line in lines) == epochs, out
