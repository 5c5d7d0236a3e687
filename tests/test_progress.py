"""Progress bars: the warm-up item does not set the first time estimate."""
import io
import re

import pytest

from kit.progress import progress


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
