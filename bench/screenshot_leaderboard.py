"""Make docs/leaderboard.png from a real classroom run of the kit.

    python bench/screenshot_leaderboard.py            # -> docs/leaderboard.png and docs/leaderboard.png.sha256
    python bench/screenshot_leaderboard.py --reveal   # the final (Private) standings instead

In a temporary folder it prepares a small practice competition (fixed seed), trains the
fast rungs of the ladder (mean, cosine, gbm with small settings; the siamese is left out
to stay within a few minutes on two cores), writes their real predictions with
``kit.write_submission``, registers a class with ``Database.add_participants`` (what
``kit participants add`` does), serves the competition on 127.0.0.1 with a clock moved by
hand over a week, and has each participant upload through ``POST /api/submissions`` with
their token. Headless Chromium (Selenium + chromedriver; Debian: ``apt-get install
chromium chromium-driver``) then takes a 1366 px wide screenshot of ``/``.

Next to the PNG, ``docs/leaderboard.png.sha256`` holds the sha256 of what the page is made
of (:func:`page_sources_sha256`) and this command; ``tests/test_docs_screenshot.py`` fails
when they change and the screenshot was not made again.
"""
import argparse
import hashlib
import io
import shutil
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kit.errors import UserError  # noqa: E402

OUT = ROOT / "docs" / "leaderboard.png"
HASH_SUFFIX = ".sha256"
COMMAND = "python bench/screenshot_leaderboard.py"
WIDTH = 1366
SEED = 11
PAIRS_PER_BIN = 100
START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)

#: rung name -> (model, parameters); small settings keep the whole run within a few minutes.
RUNGS = {
    "mean": ("mean", {"n_pairs": 4000}),
    "cosine": ("cosine", {"n_pairs": 1500}),
    "gbm-small": ("gbm", {"n_pairs": 1500, "max_iter": 30, "early_stopping": False}),
    "gbm": ("gbm", {"n_pairs": 5000, "max_iter": 150}),
}

#: participant -> (their seed, the rungs they submit in order, one every day and a half).
CLASS = {
    "Ada": (1, ["mean", "cosine", "gbm-small", "gbm"]),
    "Grace": (2, ["cosine", "gbm-small", "gbm"]),
    "Alan": (3, ["mean", "cosine"]),
    "Katherine": (4, ["cosine", "gbm"]),
    "Linus": (5, ["mean", "gbm-small"]),
    "Margaret": (6, ["mean"]),
}


def page_sources():
    """``[(name, bytes), ...]`` of everything the leaderboard page is drawn from, in a fixed order.

    The server's templates and static files, and the stylesheet served at ``/style.css``
    (``kit.board.pages.STYLESHEET``).
    """
    from kit.board import pages as leaderboard_pages

    server = ROOT / "kit" / "server"
    files = sorted((server / "templates").glob("*.html")) + sorted(p for p in (server / "static").iterdir() if p.is_file())
    sources = [(path.relative_to(ROOT).as_posix(), path.read_bytes()) for path in files]
    sources.append(("kit.board.pages.STYLESHEET", leaderboard_pages.STYLESHEET.encode("utf-8")))
    return sources


def page_sources_sha256():
    """The sha256 (hex) of :func:`page_sources`: each name and content, length-prefixed.

    Examples
    --------
    >>> len(page_sources_sha256())
    64
    """
    digest = hashlib.sha256()
    for name, content in page_sources():
        for part in (name.encode("utf-8"), content):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
    return digest.hexdigest()


def hash_file_text():
    """What ``docs/leaderboard.png.sha256`` holds: the digest, then how the PNG was made."""
    return (f"{page_sources_sha256()}  kit/server/templates/*.html kit/server/static/* "
            f"kit.board.pages.STYLESHEET\nmade by: {COMMAND}\n")


def recorded_sha256(path):
    """The digest written in a hash file by :func:`hash_file_text` (None when missing or empty)."""
    try:
        first = Path(path).read_text(encoding="utf-8").split("\n", 1)[0].split()
    except FileNotFoundError:
        return None
    return first[0] if first else None


def train_ladder(comp, echo=print):
    """``{(rung, seed): (fitted model, test predictions)}`` for every rung a participant of :data:`CLASS` submits.

    Each participant trains with their own seed (training pairs, trees), so two people on
    the same rung get close but different scores, as in a real class.
    """
    import kit.models

    fitted = {}
    for seed, rungs in CLASS.values():
        for rung in rungs:
            name, params = RUNGS[rung]
            cls = kit.models.get(name)
            quiet = {"progress": False} if "progress" in cls().get_params() else {}
            start = time.perf_counter()
            model = cls(seed=seed, **params, **quiet).fit(comp.train_spectra)
            fitted[rung, seed] = (model, model.predict(comp.test_spectra, comp.test_pairs))
            echo(f"trained {rung} (seed {seed}): {time.perf_counter() - start:.1f} s")
    return fitted


class Clock:
    """The server's clock, moved by hand through the simulated week."""

    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


class Served:
    """``app`` served by uvicorn in a thread on a free port of 127.0.0.1, as ``kit serve`` serves it."""

    def __init__(self, app):
        import uvicorn

        from kit.commands.serve import listen
        from kit.server.limits import uvicorn_config

        self.sock = listen("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/"
        self.server = uvicorn.Server(uvicorn_config(app, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()


def run_class(url, comp, ladder, tokens, clock, folder, echo=print):
    """Each participant uploads their rungs' files through the API, on successive simulated days."""
    import httpx

    from kit.scoring.writer import write_submission

    uploads = []
    for k, (who, (seed, rungs)) in enumerate(CLASS.items()):
        for day, rung in enumerate(rungs):
            uploads.append((START + timedelta(days=day * 1.5, hours=k, minutes=7 * k), who, rung, seed))
    with httpx.Client(base_url=url, timeout=120) as client:
        for when, who, rung, seed in sorted(uploads):
            clock.now = when
            model, predictions = ladder[rung, seed]
            path = write_submission(comp, predictions, model=model, participant=who, out_dir=folder / who, now=when)
            with open(path, "rb") as handle:
                answer = client.post("api/submissions", headers={"Authorization": f"Bearer {tokens[who]}"},
                                     files={"file": (path.name, handle, "text/csv")},
                                     data={"description": f"{rung}, seed {seed}"})
            if answer.status_code != 201:
                raise RuntimeError(f"{who}'s {rung} upload answered {answer.status_code}: {answer.text[:300]}")
            echo(f"{when:%a %H:%M} {who:<10} {rung:<10} {answer.json().get('public')}")
    return len(uploads)


def reveal(url, comp):
    import httpx

    from kit.board.tokens import TEACHER_TOKEN_FILE, read_teacher_token

    teacher = read_teacher_token(comp.path / "private" / TEACHER_TOKEN_FILE)
    answer = httpx.post(url + "api/reveal", headers={"Authorization": f"Bearer {teacher}"},
                        json={"revealed": True}, timeout=60)
    if answer.status_code != 200:
        raise RuntimeError(f"reveal answered {answer.status_code}: {answer.text[:300]}")


def find_browser():
    """``(chromium, chromedriver)`` paths; a UserError saying what is missing (checked before any work)."""
    from importlib.util import find_spec

    if find_spec("selenium") is None:
        raise UserError("selenium is not installed: pip install selenium")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        missing = " and ".join(name for name, path in (("Chromium", chromium), ("chromedriver", driver)) if not path)
        raise UserError(f"{missing} not found: install them with `apt-get install chromium chromium-driver`")
    return chromium, driver


def browser(width=WIDTH, height=900):
    """Headless Chromium driven by Selenium."""
    from selenium import webdriver

    chromium, driver = find_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
                 "--hide-scrollbars", "--force-device-scale-factor=1", f"--window-size={width},{height}"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))


def screenshot(url, rows, width=WIDTH):
    """PNG bytes of the whole page at ``url`` once its ``rows`` table rows and its plots are shown."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser(width)
    try:
        driver.get(url)
        wait = WebDriverWait(driver, 60)
        wait.until(lambda d: d.execute_script("return document.querySelectorAll('#rows tr').length") == rows)
        wait.until(lambda d: d.execute_script(
            "return Array.from(document.images).every(function (i) {"
            " return !i.getAttribute('src') || (i.complete && i.naturalWidth > 0); })"))
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(width, height)
        # The window's outer size includes no browser chrome when headless; check, and fit once more.
        inner = driver.execute_script("return window.innerHeight")
        if inner < height:
            driver.set_window_size(width, 2 * height - inner)
        time.sleep(0.5)
        return driver.get_screenshot_as_png()
    finally:
        driver.quit()


def small_png(png):
    """``png`` re-encoded with a 256-colour palette by Pillow (matplotlib's dependency), if that is smaller."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        out = io.BytesIO()
        image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(out, format="PNG",
                                                                                         optimize=True)
    return min(png, out.getvalue(), key=len)


def make(out=OUT, reveal_final=False, echo=print):
    """Run the class and write ``out`` and ``out.sha256``; return the PNG's size in bytes."""
    from kit.board.store import DB_NAME, Database
    from kit.competition.folder import load_competition
    from kit.competition.prepare import prepare_competition
    from kit.fileio import atomic_path, write_text_atomic
    from kit.server.app import create_app

    find_browser()
    with tempfile.TemporaryDirectory(prefix="kit-screenshot-") as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        prepare_competition(name="practice", out=tmp / "data", seed=SEED, pairs_per_bin=PAIRS_PER_BIN,
                            progress=False, echo=echo)
        comp = load_competition(tmp / "data" / "practice")
        ladder = train_ladder(comp, echo=echo)
        db = Database(comp.path / "private" / DB_NAME)
        try:
            tokens = dict(db.add_participants(list(CLASS), START - timedelta(days=1)))
        finally:
            db.close()
        clock = Clock(START)
        app = create_app(comp, leaderboard=tmp / "leaderboard", clock=clock, refresh_seconds=3600)
        with Served(app) as served:
            run_class(served.url, comp, ladder, tokens, clock, tmp / "submissions", echo=echo)
            clock.now = START + timedelta(days=6)
            if reveal_final:
                reveal(served.url, comp)
            png = small_png(screenshot(served.url, rows=len(CLASS)))
        out = Path(out)
        with atomic_path(out) as part:
            part.write_bytes(png)
        write_text_atomic(out.with_name(out.name + HASH_SUFFIX), hash_file_text())
        echo(f"screenshot: {out} ({len(png):,} bytes) in {time.perf_counter() - started:.0f} s")
    return len(png)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reveal", action="store_true", help="show the final (Private) standings")
    args = parser.parse_args(argv)
    try:
        make(reveal_final=args.reveal)
    except UserError as exc:
        print(f"screenshot_leaderboard: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
