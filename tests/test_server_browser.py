"""A real browser on the classroom site: headless Chromium uploads through /submit and reads the score.

`kit serve` runs as a subprocess on a free port of 127.0.0.1 (this is also its command-line
smoke test: it prints its address and stops cleanly on SIGTERM). Chromium is Debian's
``chromium`` with ``chromium-driver``, driven by Selenium; ``.ci/run`` installs them.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from builders import make_competition, perfect_submission

pytestmark = pytest.mark.slow


def _browser():
    """A headless Chromium driver, or skip saying what is missing."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("no Chromium to drive: install it with `apt-get install chromium chromium-driver` "
                    "(.ci/run does this in CI)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--no-first-run", "--window-size=1200,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))
    except Exception as exc:  # noqa: BLE001 - a browser that cannot start is an environment problem
        pytest.skip(f"Chromium is installed but did not start: {str(exc).splitlines()[0]}")


@pytest.fixture
def site(tmp_path):
    """`kit serve` in a subprocess on a free port; yields (url, competition, tokens, process)."""
    comp = make_competition(tmp_path / "data")
    added = subprocess.run([sys.executable, "-m", "kit", "participants", "add", "--competition", str(comp),
                            "Zoë", "Bob"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert added.returncode == 0, added.stderr
    tokens = dict(line.split(",") for line in added.stdout.splitlines()[1:])
    process = subprocess.Popen(
        [sys.executable, "-m", "kit", "serve", "--competition", str(comp), "--port", "0", "--refresh", "0.5"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url, seen = None, []
    deadline = time.monotonic() + 60
    while url is None and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        match = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        if match and line.startswith("Serving"):
            url = match.group(1)
    if url is None:
        process.kill()
        pytest.fail("kit serve did not print its address: " + "".join(seen))
    _wait_until_up(url)
    yield url, comp, tokens, process
    if process.poll() is None:
        process.kill()
        process.wait(10)


def _wait_until_up(url):
    import httpx

    for _ in range(200):
        try:
            if httpx.get(url + "api/info", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer")


def _row_texts(browser):
    """The live table's rows as text, read in one step (a refresh cannot leave a stale handle)."""
    return browser.execute_script(
        "return Array.from(document.querySelectorAll('#rows tr'), function (r) { return r.innerText; });")


def _broken_images(browser):
    """The addresses of the images on the page that have a source and did not load."""
    return browser.execute_script(
        "return Array.from(document.images).filter(function (i) {"
        " return i.getAttribute('src') && i.complete && i.naturalWidth === 0; }).map(function (i) { return i.src; });")


def _main_text(browser):
    return browser.execute_script("var m = document.querySelector('main'); return m ? m.innerText : '';")


def test_upload_through_the_form_and_read_the_score(site, tmp_path):
    import httpx
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from kit.scoring.scorer import Scorer

    url, comp, tokens, process = site
    good = perfect_submission(comp, tmp_path / "my predictions.csv", noise=0.05)
    expected = f"{Scorer(comp).score(good).public:.5f}"
    browser = _browser()
    try:
        wait = WebDriverWait(browser, 30)
        # An empty leaderboard: its text says so, and it shows no image at all (so none broken).
        browser.get(url)
        assert "No scored submissions yet" in _main_text(browser)
        assert _broken_images(browser) == [] and not browser.find_element(By.ID, "plots").is_displayed()
        browser.get(url + "submit")
        browser.find_element(By.ID, "token").send_keys(tokens["Zoë"])
        browser.find_element(By.ID, "file").send_keys(str(good))
        browser.find_element(By.ID, "description").send_keys("<img src=x onerror=alert(1)>")
        browser.find_element(By.ID, "send").click()
        score = wait.until(ec.presence_of_element_located((By.ID, "score")))
        assert score.text == expected

        # A wrong file shows the scorer's reason on the page.
        bad = tmp_path / "bad.csv"
        bad.write_text("id,similarity\n0,abc\n")
        browser.get(url + "submit")
        browser.find_element(By.ID, "token").send_keys(tokens["Zoë"])
        browser.find_element(By.ID, "file").send_keys(str(bad))
        browser.find_element(By.ID, "send").click()
        message = wait.until(ec.presence_of_element_located((By.ID, "message")))
        assert "bad.csv" in message.text and "abc" in message.text

        # The leaderboard shows the score, and updates by itself when Bob submits.
        browser.get(url)
        # The live table is rebuilt every 0.5 s: read its rows in one script call, never through
        # element handles that a refresh may replace between two calls.
        rows = wait.until(lambda b: _row_texts(b) or None)
        assert len(rows) == 1 and "Zoë" in rows[0] and expected in rows[0]
        assert "<img src=x" in rows[0]  # shown as text, not run
        better = perfect_submission(comp, tmp_path / "bob.csv", noise=0.01)
        with open(better, "rb") as handle:
            answer = httpx.post(url + "api/submissions", headers={"Authorization": f"Bearer {tokens['Bob']}"},
                                files={"file": ("bob.csv", handle, "text/csv")}, timeout=60)
        assert answer.status_code == 201
        rows = wait.until(lambda b: (lambda texts: texts if len(texts) == 2 else None)(_row_texts(b)))
        assert "Bob" in rows[0]
        wait.until(lambda b: b.execute_script(
            "var i = document.getElementById('plot-history'); return i.complete && i.naturalWidth > 0"))

        # My submissions, token by form.
        browser.get(url + "me")
        browser.find_element(By.ID, "token").send_keys(tokens["Zoë"])
        browser.find_element(By.CSS_SELECTOR, "form button").click()
        # The form page itself mentions "submission(s)": wait for the history line of the answer.
        main = wait.until(lambda b: (lambda text: text if "Zoë: " in text else None)(_main_text(b)))
        assert "token=" not in browser.current_url
        assert "my predictions.csv" in main

        # Zoë chooses her submission as final, with the page's checkboxes (no script involved).
        box = browser.find_element(By.CSS_SELECTOR, "input[name=final]")
        box.click()
        browser.find_element(By.ID, "choose").click()
        saved = wait.until(ec.presence_of_element_located((By.ID, "saved")))
        assert "#1" in saved.text
        assert browser.find_element(By.CSS_SELECTOR, "input[name=final]").is_selected()

        # A leaderboard page left open switches to the final standings when the teacher reveals.
        browser.get(url)
        wait.until(lambda b: len(_row_texts(b)) == 2)
        teacher = (comp / "private" / "teacher_token").read_text().strip()
        revealed = httpx.post(url + "api/reveal", headers={"Authorization": f"Bearer {teacher}"},
                              json={"revealed": True}, timeout=30)
        assert revealed.json() == {"revealed": True}
        wait.until(lambda b: "Final standings" in b.find_element(By.ID, "title").text)
        assert "Final standings" in browser.title
        assert "chosen final submission" in browser.find_element(By.ID, "subtitle").text
        rows = _row_texts(browser)
        assert any("Zoë" in r and "selected" in r for r in rows) and any("Bob" in r and "best Public" in r for r in rows)
        wait.until(lambda b: b.execute_script(
            "var i = document.getElementById('plot-history'); return i.complete && i.naturalWidth > 0"))
        assert _broken_images(browser) == []
        browser.get(url + "submit")
        assert "Submissions are closed" in _main_text(browser) and not browser.find_elements(By.ID, "file")

        # On a phone (390 px) the score columns stay in view; the classroom screen has no navigation.
        browser.set_window_size(390, 844)
        browser.get(url)
        wait.until(lambda b: len(_row_texts(b)) == 2)
        overflow = browser.execute_script(
            "var w = document.documentElement.clientWidth; return Array.from(document.querySelectorAll("
            "'#rows tr td:nth-child(-n+4), thead th:nth-child(-n+4)'), function (c) {"
            " return c.getBoundingClientRect().right - w; }).filter(function (d) { return d > 0; });")
        assert overflow == []
        browser.set_window_size(1200, 900)
        browser.get(url + "?view=projector")
        wait.until(lambda b: len(_row_texts(b)) == 2)
        assert not browser.find_element(By.CSS_SELECTOR, "nav.top").is_displayed()
        assert _broken_images(browser) == []

        # Nothing the pages load breaks their Content-Security-Policy or fails.
        # (The refused upload above answered 422 on purpose: the browser logs that one.)
        problems = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"
                    and "favicon" not in entry["message"] and "/submit - Failed to load resource" not in entry["message"]]
        assert problems == []
    finally:
        browser.quit()

    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0 and "Stopped." in out
    # The teacher's terminal: one line per scored submission, none for the page's polls.
    assert re.search(r"scored #1 by Zoë: Public \d\.\d{5}\n", out) and "scored #2 by Bob" in out
    assert "GET /api/leaderboard" not in out
