"""Render a sample leaderboard page and take a screenshot of it in headless Chromium.

    python bench/screenshot_leaderboard.py                 # sample classroom -> docs/leaderboard.png
    python bench/screenshot_leaderboard.py --html leaderboard/practice.html --out /tmp/lb.png

The sample is a small synthetic competition with six participants who submit for a week;
every submission goes through ``kit.write_submission`` and ``kit.score_submission`` like
a real one. Needs Chromium (Debian: ``apt-get install chromium``); without it the script
says so and exits with code 2.
"""
import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import kit  # noqa: E402
from kit.leaderboard import build_leaderboard, record_result  # noqa: E402

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
MAX_PNG_BYTES = 300_000

# participant -> (model, shrink towards 0.35, noise, improvement per submission)
CLASS = {
    "ada": ("siamese", 0.15, 0.16, 0.020),
    "grace": ("gbm", 0.30, 0.18, 0.012),
    "alan": ("cosine", 0.45, 0.22, 0.010),
    "katherine": ("siamese", 0.20, 0.20, 0.025),
    "linus": ("gbm", 0.35, 0.20, 0.008),
    "margaret": ("mean", 1.00, 0.00, 0.000),
}


def find_chromium():
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def make_sample_competition(root, n_pairs=2000, seed=7):
    """A competition folder with a solution (no spectra: scoring never reads them)."""
    import hashlib

    rng = np.random.default_rng(seed)
    folder = Path(root) / "data" / "practice"
    (folder / "private").mkdir(parents=True)
    truth = np.clip(np.repeat(np.arange(10) / 10, n_pairs // 10) + rng.random(n_pairs) / 10, 0, 1).round(4)
    usage = np.where(rng.random(n_pairs) < 0.3, "Public", "Private")
    ids = np.arange(n_pairs)
    (folder / "train.mgf").write_text("")
    (folder / "test.mgf").write_text("")
    (folder / "test_pairs.csv").write_text("id,spectrum_id_a,spectrum_id_b\n" + "".join(f"{i},A{i},B{i}\n" for i in ids))
    (folder / "sample_submission.csv").write_text("id,similarity\n" + "".join(f"{i},0.5\n" for i in ids))
    (folder / "private" / "solution.csv").write_text(
        "id,similarity,Usage\n" + "".join(f"{i},{t},{u}\n" for i, t, u in zip(ids, truth, usage))
    )
    files = ["train.mgf", "test.mgf", "test_pairs.csv", "sample_submission.csv", "private/solution.csv"]
    meta = {"name": "practice", "seed": seed, "public_fraction": 0.3, "max_daily_submissions": 5,
            "metric": {"name": "rmse", "direction": "minimize", "decimals": 5, "target": "similarity"},
            "files": {f: hashlib.sha256((folder / f).read_bytes()).hexdigest() for f in files}}
    (folder / "competition.json").write_text(json.dumps(meta, indent=2))
    return folder, truth


def fill_leaderboard(root, folder, truth, seed=7):
    """A week of submissions from the sample class, written and scored by the kit."""
    rng = np.random.default_rng(seed)
    comp = kit.load_competition(folder)
    start = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)
    for k, (who, (model, shrink, noise, gain)) in enumerate(CLASS.items()):
        tries = 1 if model == "mean" else int(rng.integers(4, 9))
        for attempt in range(tries):
            when = start + timedelta(days=attempt * 6 / max(tries, 1), hours=int(rng.integers(0, 9)) + k)
            s = max(0.05, shrink - gain * attempt * 3)
            sd = max(0.05, noise - gain * attempt)
            pred = (1 - s) * truth + s * 0.35 + sd * rng.standard_normal(truth.size) * (0.6 + truth)
            pred = np.clip(pred, 0.0, 1.0)  # as the kit's models do
            path = kit.write_submission(comp, pred, model=model, participant=who, out_dir=root / "submissions",
                                        now=when)
            result = kit.score_submission(path, comp)
            record_result(result, participant=who, leaderboard=root / "leaderboard", time=when)
    return comp


def screenshot(chromium, html, out, width=1100, height=1450):
    """Take a full-window PNG of ``html`` with a fresh, offline Chromium profile."""
    with tempfile.TemporaryDirectory(prefix="kit-chromium-") as profile:
        command = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--hide-scrollbars", f"--user-data-dir={profile}", f"--screenshot={out}",
            f"--window-size={width},{height}", Path(html).resolve().as_uri(),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode != 0 or not Path(out).is_file():
        raise SystemExit(f"chromium failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return Path(out)


def shrink_png(path, limit=MAX_PNG_BYTES):
    """Re-encode the screenshot with a 256-colour palette when it is over ``limit`` bytes."""
    if path.stat().st_size <= limit:
        return path
    from PIL import Image

    with Image.open(path) as image:
        image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", help="screenshot this page instead of a freshly built sample")
    parser.add_argument("--out", default=str(ROOT / "docs" / "leaderboard.png"), help="PNG to write")
    parser.add_argument("--private", action="store_true", help="render the final (Private) standings")
    parser.add_argument("--width", type=int, default=1100)
    parser.add_argument("--height", type=int, default=1450)
    args = parser.parse_args(argv)

    chromium = find_chromium()
    if chromium is None:
        print("screenshot_leaderboard: Chromium not found (looked for " + ", ".join(CHROMIUM_NAMES) + "); "
              "install it, e.g. `apt-get install chromium` on Debian", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="kit-sample-") as tmp:
        html = args.html
        if html is None:
            root = Path(tmp)
            folder, truth = make_sample_competition(root)
            fill_leaderboard(root, folder, truth)
            standings = build_leaderboard(folder, leaderboard=root / "leaderboard", private=args.private)
            html = standings.html_path
            print(standings.text)
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        shrink_png(screenshot(chromium, html, out, args.width, args.height))
    print(f"screenshot: {out} ({out.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
