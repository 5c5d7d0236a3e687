"""docs/leaderboard.png is made again whenever what the page is drawn from changes.

bench/screenshot_leaderboard.py writes the sha256 of the server's templates, static files
and stylesheet beside the PNG; these tests recompute it.
"""
import shutil
import struct

import pytest

from conftest import REPO, load_bench_script

PNG = REPO / "docs" / "leaderboard.png"
STALE = "the page template changed: run `python bench/screenshot_leaderboard.py` to make docs/leaderboard.png again"


@pytest.fixture(scope="module")
def shot():
    return load_bench_script("screenshot_leaderboard")


def test_the_screenshot_was_made_from_the_current_page_templates(shot):
    recorded = shot.recorded_sha256(PNG.with_name(PNG.name + shot.HASH_SUFFIX))
    if recorded != shot.page_sources_sha256():
        pytest.fail(STALE, pytrace=False)


def test_the_hash_file_says_how_the_screenshot_was_made(shot):
    lines = PNG.with_name(PNG.name + shot.HASH_SUFFIX).read_text(encoding="utf-8").splitlines()
    assert lines == shot.hash_file_text().splitlines()
    assert lines[1] == "made by: python bench/screenshot_leaderboard.py"


def test_the_screenshot_is_a_small_png_1366_pixels_wide():
    data = PNG.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width == 1366 and 600 < height < 4000
    assert len(data) < 300_000


def test_the_readme_shows_the_screenshot_with_an_alt_text():
    assert "![Leaderboard page](docs/leaderboard.png)" in (REPO / "README.md").read_text(encoding="utf-8")


@pytest.fixture
def copy(shot, tmp_path, monkeypatch):
    """The script looking at a copy of the server's templates and static files."""
    for folder in ("templates", "static"):
        shutil.copytree(REPO / "kit" / "server" / folder, tmp_path / "kit" / "server" / folder)
    monkeypatch.setattr(shot, "ROOT", tmp_path)
    return tmp_path / "kit" / "server"


def test_the_copy_hashes_like_the_tree(shot, copy, monkeypatch):
    copied = shot.page_sources_sha256()
    monkeypatch.setattr(shot, "ROOT", REPO)
    assert shot.page_sources_sha256() == copied
    names = [name for name, _ in shot.page_sources()]
    assert "kit/server/templates/leaderboard.html" in names and "kit/server/static/live.js" in names
    assert names[-1] == "kit.board.pages.STYLESHEET"


@pytest.mark.parametrize("change", [
    "edit a template", "edit the base template", "edit a static file", "add a template", "add a static file",
    "remove a template", "rename a template", "move text between two files", "touch only a trailing newline",
])
def test_every_change_to_what_the_page_is_drawn_from_changes_the_hash(shot, copy, change):
    before = shot.page_sources_sha256()
    templates, static = copy / "templates", copy / "static"
    if change == "edit a template":
        page = templates / "leaderboard.html"
        page.write_text(page.read_text().replace("<", "<!-- x --><", 1))
    elif change == "edit the base template":
        (templates / "base.html").write_bytes((templates / "base.html").read_bytes().replace(b"e", b"E", 1))
    elif change == "edit a static file":
        (static / "server.css").write_text((static / "server.css").read_text() + "\nbody { color: red }\n")
    elif change == "add a template":
        (templates / "extra.html").write_text("{% extends 'base.html' %}")
    elif change == "add a static file":
        (static / "logo.svg").write_text("<svg/>")
    elif change == "remove a template":
        (templates / "me.html").unlink()
    elif change == "rename a template":
        (templates / "me.html").rename(templates / "mine.html")
    elif change == "move text between two files":
        # The same bytes in total, split differently: the length prefixes tell them apart.
        a, b = templates / "base.html", templates / "leaderboard.html"
        text_a, text_b = a.read_bytes(), b.read_bytes()
        a.write_bytes(text_a + text_b[:10])
        b.write_bytes(text_b[10:])
    else:
        (static / "live.js").write_bytes((static / "live.js").read_bytes() + b"\n")
    assert shot.page_sources_sha256() != before


def test_a_change_to_the_served_stylesheet_changes_the_hash(shot, monkeypatch):
    from kit.board import pages as leaderboard_pages

    before = shot.page_sources_sha256()
    monkeypatch.setattr(leaderboard_pages, "STYLESHEET", leaderboard_pages.STYLESHEET + "\nh1 { color: red }")
    assert shot.page_sources_sha256() != before


@pytest.mark.parametrize("text", [None, "", "\n", "not-a-digest\n", "0" * 64 + "\n"])
def test_a_missing_or_wrong_hash_file_counts_as_stale(shot, tmp_path, text):
    path = tmp_path / "leaderboard.png.sha256"
    if text is not None:
        path.write_text(text)
    assert shot.recorded_sha256(path) != shot.page_sources_sha256()


@pytest.mark.parametrize("missing", ["chromium", "chromedriver", "both"])
def test_without_a_browser_the_script_says_so_in_one_line_before_any_work(shot, monkeypatch, capsys, missing):
    real = shutil.which

    def which(name):
        gone = {"chromium", "chromium-browser", "google-chrome"} if missing in ("chromium", "both") else set()
        gone |= {"chromedriver"} if missing in ("chromedriver", "both") else set()
        return None if name in gone else real(name) or f"/usr/bin/{name}"

    def no_work(*args, **kwargs):
        raise AssertionError("the competition was prepared although no browser can take the screenshot")

    monkeypatch.setattr(shot.shutil, "which", which)
    monkeypatch.setattr("kit.competition.prepare.prepare_competition", no_work)
    before = PNG.read_bytes()
    assert shot.main([]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "apt-get install chromium chromium-driver" in err
    said = {"chromium": "Chromium not found", "chromedriver": "chromedriver not found",
            "both": "Chromium and chromedriver not found"}[missing]
    assert said in err
    assert PNG.read_bytes() == before
