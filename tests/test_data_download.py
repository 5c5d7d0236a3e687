"""Downloads against a local server on 127.0.0.1 that plays every kind of bad mirror."""
import http.server
import threading
import time

import pytest

from conftest import structure_spectra
from kit.data.download import check_library, clear_hint, download, fetch_massbank
from kit.errors import UserError

HTML = b"<!DOCTYPE html>\n<html><head><title>Not Found</title></head><body>Sorry</body></html>\n"


@pytest.fixture(scope="module")
def msp_bytes(tmp_path_factory):
    from matchms.exporting import save_as_msp

    path = tmp_path_factory.mktemp("msp") / "lib.msp"
    spectra = structure_spectra(per_molecule=1)[:5]
    for s in spectra:
        s.set("ionmode", "positive")
    save_as_msp(spectra, str(path))
    return path.read_bytes()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``routes[path]``: (status, headers, body, seconds between bytes or None)."""

    routes = {}

    def do_GET(self):  # noqa: N802 - the http.server API
        status, headers, body, trickle = self.routes.get(self.path, (404, {}, b"not here", None))
        self.send_response(status)
        headers = {"Content-Length": str(len(body)), **headers}
        for key, value in headers.items():
            if value is not None:
                self.send_header(key, value)
        self.end_headers()
        try:
            if trickle is None:
                self.wfile.write(body)
                return
            for k in range(len(body)):
                self.wfile.write(body[k:k + 1])
                self.wfile.flush()
                time.sleep(trickle)
        except OSError:  # the client gave up: what the test wanted
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """A threaded server on 127.0.0.1; ``serve(path, ...)`` returns the URL. Stops itself."""
    handler = type("Handler", (_Handler,), {"routes": {}})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def serve(path, body=b"", status=200, headers=None, trickle=None):
        handler.routes[path] = (status, headers or {}, body, trickle)
        return f"http://127.0.0.1:{httpd.server_port}{path}"

    yield serve
    httpd.shutdown()
    httpd.server_close()


def assert_nothing_cached(cache):
    assert not cache.exists() or list(cache.iterdir()) == [], list(cache.iterdir())


def test_a_good_library_is_checked_cached_and_reused(tmp_path, server, msp_bytes, monkeypatch):
    url = server("/MassBank_NISTformat.msp", msp_bytes)
    monkeypatch.setenv("SPECSIM_MASSBANK_URL", url)
    path = fetch_massbank(tmp_path / "cache", progress=False)
    assert path == tmp_path / "cache" / "MassBank_NISTformat.msp" and path.read_bytes() == msp_bytes
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    monkeypatch.setenv("SPECSIM_MASSBANK_URL", "http://127.0.0.1:9/MassBank_NISTformat.msp")  # nobody there: the cache answers
    assert fetch_massbank(tmp_path / "cache", progress=False) == path


BAD_DOWNLOADS = {
    "short body": (dict(body=b"Name: x\nNum Peaks: 5\n50 1\n", headers={"Content-Length": "5000"}), "stopped early"),
    "wrong content": (dict(body=b"hello world\nthis is not a library\n"), "not usable"),
    "HTML error page with 200": (dict(body=HTML), "web page"),
    "binary": (dict(body=bytes(range(256)) * 4), "binary data"),
    "only metadata": (dict(body=b"Name: x\nComment: nothing else\n"), "no spectra found"),
    "MSP cut inside a record, no length": (
        dict(body=b"Name: a\nNum Peaks: 2\n50 1\n60 2\n\nName: b\nNum Peaks: 4\n50 1\n", headers={"Content-Length": None}),
        "cut short",
    ),
    "empty body": (dict(body=b""), "no spectra found"),
    "404": (dict(body=HTML, status=404), "answered 404"),
    "500": (dict(body=b"oops", status=500), "answered 500"),
    "too large announced": (dict(body=b"x" * 10, headers={"Content-Length": str(10 ** 12)}), "more than the"),
}


@pytest.mark.parametrize("case", list(BAD_DOWNLOADS))
def test_a_bad_download_is_one_error_and_nothing_is_cached(tmp_path, server, case):
    options, fragment = BAD_DOWNLOADS[case]
    url = server("/lib.msp", **options)
    with pytest.raises(UserError, match=fragment) as info:
        download(url, tmp_path / "cache" / "lib.msp", progress=False, fmt="msp")
    assert url in str(info.value) and "\n" not in str(info.value)
    assert_nothing_cached(tmp_path / "cache")


def test_a_body_larger_than_allowed_is_cut_off(tmp_path, server, msp_bytes):
    url = server("/lib.msp", msp_bytes, headers={"Content-Length": None})
    with pytest.raises(UserError, match="more than the 100 bytes allowed"):
        download(url, tmp_path / "cache" / "lib.msp", progress=False, fmt="msp", max_bytes=100)
    assert_nothing_cached(tmp_path / "cache")


def test_a_slow_server_meets_the_overall_deadline(tmp_path, server, msp_bytes):
    # Each byte comes well within the socket timeout, so only an overall deadline stops it.
    url = server("/lib.msp", msp_bytes, trickle=0.05)
    started = time.monotonic()
    with pytest.raises(UserError, match="not finished within the 1 s deadline"):
        download(url, tmp_path / "cache" / "lib.msp", progress=False, timeout=5, deadline=1, fmt="msp")
    assert time.monotonic() - started < 3
    assert_nothing_cached(tmp_path / "cache")


def test_a_silent_server_times_out(tmp_path, server):
    # Headers announce a body that never comes.
    url = server("/lib.msp", b"Name: x\n", headers={"Content-Length": "100"}, trickle=10)
    started = time.monotonic()
    with pytest.raises(UserError, match="sent nothing for 0.5 s|not finished within"):
        download(url, tmp_path / "cache" / "lib.msp", progress=False, timeout=0.5, deadline=30, fmt="msp")
    assert time.monotonic() - started < 3
    assert_nothing_cached(tmp_path / "cache")


def test_nobody_listening_is_a_user_error(tmp_path):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    port = httpd.server_port
    httpd.server_close()
    with pytest.raises(UserError, match="could not download .*--library PATH"):
        download(f"http://127.0.0.1:{port}/x.msp", tmp_path / "cache" / "x.msp", progress=False)
    assert_nothing_cached(tmp_path / "cache")


def test_an_interrupted_download_leaves_no_temporary_file(tmp_path, server, msp_bytes, monkeypatch):
    url = server("/lib.msp", msp_bytes)

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("kit.data.download.check_library", interrupt)
    with pytest.raises(KeyboardInterrupt):
        download(url, tmp_path / "cache" / "lib.msp", progress=False, fmt="msp")
    assert_nothing_cached(tmp_path / "cache")


@pytest.mark.parametrize(
    "content, fragment",
    [(HTML, "web page"), (b"garbage without records\n", "unreadable msp"), (b"\0\0\0binary", "binary data"),
     (b"Name: x\nNum Peaks: 9\n50 1\n", "cut short")],
)
def test_a_bad_cached_file_is_named_with_how_to_clear_it(tmp_path, content, fragment, monkeypatch):
    cached = tmp_path / "cache" / "MassBank_NISTformat.msp"
    cached.parent.mkdir()
    cached.write_bytes(content)
    monkeypatch.setenv("SPECSIM_MASSBANK_URL", "http://127.0.0.1:9/MassBank_NISTformat.msp")
    with pytest.raises(UserError, match=fragment) as info:
        fetch_massbank(tmp_path / "cache", progress=False)
    assert f"delete {cached} and run again" in str(info.value)
    assert cached.read_bytes() == content  # the user decides; nothing is deleted behind their back


def test_a_cached_file_broken_after_its_first_record_is_caught_by_prepare(workdir, msp_bytes, monkeypatch):
    from kit.competition.prepare import prepare_competition

    cached = workdir / "data" / "cache" / "MassBank_NISTformat.msp"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(msp_bytes.rstrip(b"\n").rsplit(b"\n", 2)[0] + b"\n")  # the last record loses two peaks
    monkeypatch.setenv("SPECSIM_MASSBANK_URL", "http://127.0.0.1:9/MassBank_NISTformat.msp")
    with pytest.raises(UserError, match="cut short") as info:
        prepare_competition("massbank", progress=False)
    assert f"delete {cached} and run again" in str(info.value)
    assert not (workdir / "data" / "massbank").exists()


def test_a_folder_in_the_way_of_the_download(tmp_path):
    (tmp_path / "cache" / "lib.msp").mkdir(parents=True)
    with pytest.raises(UserError, match="in the way") as info:
        download("http://127.0.0.1:9/lib.msp", tmp_path / "cache" / "lib.msp", progress=False)
    assert clear_hint(tmp_path / "cache" / "lib.msp") in str(info.value)


def test_check_library_counts_spectra(tmp_path, msp_bytes):
    path = tmp_path / "lib.msp"
    path.write_bytes(msp_bytes)
    assert check_library(path, "msp") == 5
    assert check_library(path, "msp", full=False) == 1
