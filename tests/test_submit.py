"""``kit submit`` against a live ``kit serve`` app on 127.0.0.1 (uvicorn in a thread)."""
import contextlib
import json
import warnings

import pytest

pytest.importorskip("uvicorn")
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")

from builders import make_competition, perfect_submission  # noqa: E402
from kit.cli import main  # noqa: E402
from kit.commands.serve import listen  # noqa: E402
from kit.server.app import create_app  # noqa: E402
from server_builders import LiveServer  # noqa: E402


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    root = tmp_path_factory.mktemp("submit")
    comp = make_competition(root / "data")
    app = create_app(comp, leaderboard=root / "lb", max_upload_mb=0.05, export_interval=5)
    tokens = dict(app.state.kit.db.add_participants(["Ada", "Bob", "Revoked"], app.state.kit.clock()))
    app.state.kit.db.revoke_participant("Revoked", app.state.kit.clock())
    with LiveServer(app) as server:
        server.comp, server.tokens, server.root = comp, tokens, root
        yield server


@pytest.fixture
def good(live, tmp_path):
    return perfect_submission(live.comp, tmp_path / "good.csv", noise=0.1)


def submit(capsys, *argv):
    code = main(["submit", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_prints_the_score(capsys, live, good):
    from kit.scoring.scorer import Scorer

    code, out, err = submit(capsys, str(good), "--server", live.url, "--token", live.tokens["Ada"], "-m", "gbm")
    assert code == 0, err
    assert f"Public score {Scorer(live.comp).score(good).public:.5f}" in out and "Ada" in out
    assert "your submission 1 of 5 today, 4 left" in out
    code, out, err = submit(capsys, str(good), "--server", live.url, "--token", live.tokens["Ada"])
    assert code == 0 and "your submission 2 of 5 today, 3 left" in out and "; id #" in out


def test_token_from_the_environment_and_json(capsys, live, good, monkeypatch):
    monkeypatch.setenv("KIT_TOKEN", live.tokens["Bob"])
    code, out, _ = submit(capsys, str(good), "--server", live.url + "/", "--json")
    assert code == 0
    answer = json.loads(out)
    assert answer["participant"] == "Bob" and {"id", "public", "submitted_at", "remaining_today"} <= set(answer)


@pytest.mark.parametrize("token, expected", [
    ("wrong-token", "(401): unknown token"),
    ("REVOKED", "(401): this token was revoked"),
])
def test_refused_token_exits_2_with_the_servers_reason(capsys, live, good, token, expected):
    token = live.tokens["Revoked"] if token == "REVOKED" else token
    code, out, err = submit(capsys, str(good), "--server", live.url, "--token", token)
    assert code == 2 and expected in err and out == ""


def test_invalid_file_exits_2_with_the_scorers_message(capsys, live, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,similarity\n0,\x1b[31mred\n")
    code, _, err = submit(capsys, str(bad), "--server", live.url, "--token", live.tokens["Ada"])
    assert code == 2 and "(422)" in err and "bad.csv" in err
    assert "\x1b" not in err  # the server's text cannot drive the terminal


def test_file_over_the_servers_cap(capsys, live, tmp_path):
    big = tmp_path / "big.csv"
    big.write_bytes(b"id,similarity\n" + b"0,0.5\n" * 200_000)  # 1.2 MB against a 0.05 MB cap
    code, _, err = submit(capsys, str(big), "--server", live.url, "--token", live.tokens["Ada"])
    assert code == 2 and ("(413)" in err or "size cap" in err)


@pytest.mark.parametrize("argv, expected", [
    (["missing.csv"], "not a file"),
    (["FILE", "--server", "ftp://example.org"], "expected an address"),
    (["FILE", "--server", "not a url"], "expected an address"),
    (["FILE", "--token", ""], "no token"),
    (["FILE", "--token", "bad\ntoken"], "token"),
])
def test_user_errors(capsys, live, good, argv, expected, monkeypatch):
    monkeypatch.delenv("KIT_TOKEN", raising=False)
    argv = [str(good) if a == "FILE" else a for a in argv]
    if "--server" not in argv:
        argv += ["--server", live.url]
    if "--token" not in argv and "no token" not in expected:
        argv += ["--token", "x" * 32]
    code, _, err = submit(capsys, *argv)
    assert code == 2 and expected in err and "Traceback" not in err


@pytest.mark.parametrize("page", ["/submit", "/submit/", "/me", "/docs", "/docs#/default", "/api/submissions",
                                  "/api", "/api/leaderboard/", "/?tab=all", "/#top", "/SUBMIT"])
def test_a_page_address_names_the_base_address_to_use(capsys, live, good, page):
    code, out, err = submit(capsys, str(good), "--server", live.url + page, "--token", live.tokens["Ada"])
    assert code == 2 and out == "" and "Traceback" not in err
    assert f"is the address of a page of the site, not of the site: use --server {live.url}\n" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("address, hint", [("127.0.0.1:8000", "use --server http://127.0.0.1:8000"),
                                           ("localhost:8000/", "use --server http://localhost:8000")])
def test_an_address_without_http_says_how_to_write_it(capsys, good, address, hint):
    code, _, err = submit(capsys, str(good), "--server", address, "--token", "x" * 32)
    assert code == 2 and hint in err


def test_an_address_where_nothing_takes_submissions_says_so(capsys, live, good):
    # Another prefix than the site's (a proxy path that is not there): the server's 404, said plainly.
    code, _, err = submit(capsys, str(good), "--server", live.url + "/class", "--token", live.tokens["Ada"])
    assert code == 2 and "answered 404 (nothing takes submissions there)" in err and "leaderboard page" in err


def test_unreachable_server(capsys, good):
    sock = listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    code, _, err = submit(capsys, str(good), "--server", f"http://127.0.0.1:{port}", "--token", "x" * 32,
                          "--timeout", "5")
    assert code == 2 and "cannot reach" in err


def test_a_site_that_is_not_kit_serve(capsys, good):
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse

    other = FastAPI()

    @other.post("/api/submissions")
    async def html():
        return HTMLResponse("<html>hello</html>", status_code=200)

    with LiveServer(other) as server:
        code, _, err = submit(capsys, str(good), "--server", server.url, "--token", "x" * 32)
    assert code == 2 and "without JSON" in err


def test_scores_from_the_server_are_printed_to_5_decimals(capsys, good):
    """Whatever digits a server sends, the participant sees five (the sentence and --json alike)."""
    answer = json.dumps({"id": 1, "participant": "Ada", "public": 0.123456789, "submitted_at": "t",
                         "remaining_today": 2, "warnings": []}).encode()

    async def precise_server(scope, receive, send):
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            return await send({"type": "lifespan.shutdown.complete"})
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 201, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": answer})

    with LiveServer(precise_server) as server:
        code, out, _ = submit(capsys, str(good), "--server", server.url, "--token", "t", "--json")
        assert code == 0 and json.loads(out)["public"] == 0.12346
        code, out, _ = submit(capsys, str(good), "--server", server.url, "--token", "t")
        assert code == 0 and "Public score 0.12346 " in out and "0.123456" not in out


# --- choosing final submissions ---------------------------------------------------------------


def test_final_chooses_and_takes_back(capsys, live, good):
    first = json.loads(submit(capsys, str(good), "--server", live.url, "--token", live.tokens["Ada"], "--json")[1])
    code, out, err = submit(capsys, "--final", str(first["id"]), "--server", live.url, "--token", live.tokens["Ada"])
    assert code == 0, err
    assert out.strip() == f"Final submission(s) of Ada: #{first['id']}"
    code, out, _ = submit(capsys, "--final", "--server", live.url, "--token", live.tokens["Ada"], "--json")
    assert code == 0 and json.loads(out) == {"participant": "Ada", "submissions": []}


@pytest.mark.parametrize("ids, expected", [
    (["1", "2", "3"], "(422): at most 2 final submissions"),
    (["999999"], "(422): submission 999999 is not one of your scored submissions"),
])
def test_final_refusals_exit_2_with_the_servers_reason(capsys, live, ids, expected):
    code, out, err = submit(capsys, "--final", *ids, "--server", live.url, "--token", live.tokens["Bob"])
    assert code == 2 and expected in err and out == ""


@pytest.mark.parametrize("argv, expected", [
    (["FILE", "--final", "1"], "expected one of them"),
    (["--final", "x"], "expected an integer >= 1"),
    (["--final", "0"], "expected an integer >= 1"),
    (["--final", "1", "-2"], "expected an integer >= 1"),
    ([], "no file"),
])
def test_final_user_errors(capsys, live, good, argv, expected):
    argv = [str(good) if a == "FILE" else a for a in argv]
    refused_by_argparse = "integer" in expected
    with pytest.raises(SystemExit) if refused_by_argparse else contextlib.nullcontext():
        code, _, err = submit(capsys, *argv, "--server", live.url, "--token", "x" * 32)
        assert code == 2 and expected in err
    if refused_by_argparse:
        assert expected in capsys.readouterr().err


def test_tokens_never_start_with_a_dash(monkeypatch):
    """A token beginning with '-' would be read as an option by `kit submit --token`."""
    import secrets

    from kit.board.tokens import new_token

    given = iter(["-starts-with-a-dash-aaaaaaaaaaaa", "fine-token-bbbbbbbbbbbbbbbbbbbbbb"])
    monkeypatch.setattr(secrets, "token_urlsafe", lambda n: next(given))
    assert new_token() == "fine-token-bbbbbbbbbbbbbbbbbbbbbb"
