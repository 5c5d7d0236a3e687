"""The classroom server's HTTP API and pages (FastAPI TestClient, in process)."""
import json
import os
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
# Starlette would like httpx2 for its test client; httpx works the same here.
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
from fastapi.testclient import TestClient  # noqa: E402

from builders import make_competition, perfect_submission, read_solution, write_submission_file  # noqa: E402
from kit.board.migrations import SCHEMA_VERSION  # noqa: E402
from kit.errors import UserError  # noqa: E402
from kit.server.app import create_app  # noqa: E402
from server_builders import Clock, LiveServer, call_asgi, form_end, form_part  # noqa: E402


@pytest.fixture
def comp(tmp_path):
    return make_competition(tmp_path / "data")


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def make_server(comp, tmp_path, clock):
    """Build an app (options as keywords), register Ada and Bob, and open a TestClient."""
    opened = []

    def build(**options):
        options.setdefault("leaderboard", tmp_path / "lb")
        options.setdefault("clock", clock)
        options.setdefault("export_interval", 0)
        app = create_app(comp, **options)
        client = TestClient(app)
        client.__enter__()
        opened.append(client)
        state = app.state.kit
        if not state.db.participants():
            client.tokens = dict(state.db.add_participants(["Ada", "Bob"], clock()))
        client.state = state
        return client

    yield build
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def server(make_server):
    return make_server()


@pytest.fixture
def good(comp, tmp_path):
    return perfect_submission(comp, tmp_path / "good.csv", noise=0.1)


def auth(token):
    return {"Authorization": f"Bearer {token}"}


def post(client, token, path=None, content=None, name="pred.csv", description=None, headers=None):
    data = {} if description is None else {"description": description}
    body = content if content is not None else Path(path).read_bytes()
    return client.post("/api/submissions", headers={**auth(token), **(headers or {})},
                       files={"file": (name, body, "text/csv")}, data=data)


def recorded(client):
    return client.state.db.submissions()


# --- 201 -------------------------------------------------------------------------------


def test_accepted_submission_is_scored_stored_and_ranked(server, good, comp):
    from kit.scoring.scorer import Scorer

    response = post(server, server.tokens["Ada"], good, description="gbm v1")
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) >= {"id", "participant", "public", "submitted_at", "remaining_today"}
    assert body["participant"] == "Ada"
    exact = Scorer(comp).score(good).public
    assert body["public"] == round(exact, 5) != exact  # as shown; the database keeps every digit
    assert body["submitted_at"] == "2026-03-01T12:00:00.000000Z"  # the server's clock, not the file's
    assert body["remaining_today"] == 4
    (row,) = recorded(server)
    stored = comp / "private" / row["stored_path"]
    assert stored.read_bytes() == good.read_bytes()
    assert stored.parent == comp / "private" / "submissions" and stored.name == f"{row['sha256']}.csv"
    assert row["status"] == "scored" and row["description"] == "gbm v1" and row["private"] is not None
    assert row["public"] == exact
    board = server.get("/api/leaderboard").json()
    assert board["competition"] == "practice" and board["revealed"] is False
    (entry,) = board["rows"]
    assert entry["participant"] == "Ada" and entry["rank"] == 1 and entry["entries"] == 1
    assert entry["last_submitted_at"] == body["submitted_at"]
    assert "private" not in entry  # hidden until revealed
    assert not list((comp / "private" / "submissions" / ".incoming").iterdir())


def test_best_public_per_participant_and_ties_to_the_earlier_server_time(server, comp, tmp_path, clock):
    better = perfect_submission(comp, tmp_path / "better.csv", noise=0.01)
    worse = perfect_submission(comp, tmp_path / "worse.csv", noise=0.2)
    assert post(server, server.tokens["Bob"], better).status_code == 201
    clock.advance(minutes=1)
    # Ada sends the very same file later: same score, so Bob (earlier) stays first.
    assert post(server, server.tokens["Ada"], better).status_code == 201
    clock.advance(minutes=1)
    assert post(server, server.tokens["Ada"], worse).status_code == 201
    rows = server.get("/api/leaderboard").json()["rows"]
    assert [r["participant"] for r in rows] == ["Bob", "Ada"]
    assert rows[1]["entries"] == 2 and rows[1]["public"] == rows[0]["public"]
    assert rows[1]["last_submitted_at"] > rows[1]["best_submitted_at"]


# --- 401 -------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": ""},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer    "},
    {"Authorization": "Basic QWxhZGRpbjpvcGVu"},
    {"Authorization": "Bearer not-a-real-token"},
    {"Authorization": "Bearer " + "x" * 5000},
    {"Authorization": "Bearer ' OR 1=1 --"},
    {"Authorization": "Bearer \u00e9\u00e9\u00e9".encode("utf-8")},
    {"Authorization": b"Bearer \x7f\x01"},
    {"Authorization": b"Bearer \xff\xfe"},
])
def test_missing_or_garbage_token_is_401_and_nothing_recorded(server, good, headers):
    response = server.post("/api/submissions", headers=headers, files={"file": ("a.csv", good.read_bytes(), "text/csv")})
    assert response.status_code == 401
    assert set(response.json()) == {"error"}
    assert recorded(server) == []
    assert server.get("/api/me", headers=headers).status_code == 401


def test_revoked_token_is_401_and_its_submissions_stay(server, good, clock):
    assert post(server, server.tokens["Ada"], good).status_code == 201
    server.state.db.revoke_participant("ada", clock())
    response = post(server, server.tokens["Ada"], good)
    assert response.status_code == 401 and "revoked" in response.json()["error"]
    assert [r["participant"] for r in server.get("/api/leaderboard").json()["rows"]] == ["Ada"]
    # Added again: a new token works, the old one still does not.
    _, token = server.state.db.add_participant("Ada", clock())
    assert post(server, token, good).status_code == 201
    assert post(server, server.tokens["Ada"], good).status_code == 401


def test_teacher_token_is_not_a_participant(server, good, comp):
    teacher = (comp / "private" / "teacher_token").read_text().strip()
    assert post(server, teacher, good).status_code == 401


def test_a_token_only_sees_and_submits_as_its_owner(server, good):
    assert post(server, server.tokens["Ada"], good, description="ada's").status_code == 201
    response = post(server, server.tokens["Bob"], good)
    assert response.json()["participant"] == "Bob"
    mine = server.get("/api/me", headers=auth(server.tokens["Bob"])).json()
    assert mine["participant"] == "Bob"
    assert [s["description"] for s in mine["submissions"]] == [""]
    # A participant name in the form cannot choose who is credited.
    response = server.post("/api/submissions", headers=auth(server.tokens["Bob"]),
                           files={"file": ("a.csv", good.read_bytes(), "text/csv")},
                           data={"participant": "Ada", "description": "x"})
    assert response.json()["participant"] == "Bob"


# --- 413 -------------------------------------------------------------------------------


def test_file_over_the_cap_is_413_with_content_length(make_server, good, comp):
    server = make_server(max_upload_mb=0.001)  # about 1 kB
    big = good.read_bytes() + b"\n" * 5000
    response = post(server, server.tokens["Ada"], content=big)
    assert response.status_code == 413
    assert "at most" in response.json()["error"]
    assert recorded(server) == []
    assert not list((comp / "private" / "submissions" / ".incoming").iterdir())


def test_streamed_upload_without_length_is_refused_while_streaming(make_server):
    """At the ASGI level, counting what the app reads: it stops soon after the cap."""
    import asyncio

    server = make_server(max_upload_mb=1)
    boundary = "kitboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.csv\"\r\n"
            "Content-Type: text/csv\r\n\r\nid,similarity\r\n").encode()
    chunks = iter([head] + [b"0,0.5\n" * 10_000] * 10_000)  # 600 MB if read to the end
    read, sent = [], []

    async def receive():
        chunk = next(chunks, None)
        read.append(chunk)
        return {"type": "http.request", "body": chunk or b"", "more_body": chunk is not None}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/submissions", "raw_path": b"/api/submissions", "query_string": b"", "root_path": "",
             "headers": [(b"authorization", f"Bearer {server.tokens['Ada']}".encode()),
                         (b"content-type", f"multipart/form-data; boundary={boundary}".encode())],
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000)}
    asyncio.run(server.app(scope, receive, send))
    assert sent[0]["status"] == 413
    assert len(read) < 30  # about 1 MB read of 600 MB
    assert recorded(server) == []


def test_huge_content_length_is_refused_before_reading(server):
    response = server.post("/api/submissions", content=b"x",
                           headers={**auth(server.tokens["Ada"]), "Content-Type": "multipart/form-data; boundary=b",
                                    "Content-Length": str(10 ** 12)})
    assert response.status_code == 413


# --- 415 / 422 ---------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [
    {"json": {"file": "id,similarity\n0,0.5\n"}},
    {"data": {"file": "id,similarity"}},
    {"content": b"id,similarity\n0,0.5\n", "headers": {"Content-Type": "text/csv"}},
    {"content": b"id,similarity\n0,0.5\n"},
])
def test_body_that_is_not_multipart_is_415(server, kwargs):
    headers = {**auth(server.tokens["Ada"]), **kwargs.pop("headers", {})}
    response = server.post("/api/submissions", headers=headers, **kwargs)
    assert response.status_code == 415
    assert "multipart/form-data" in response.json()["error"]
    assert recorded(server) == []


@pytest.mark.parametrize("content, expected", [
    (b"", "empty"),
    (b"id,sim\n0,0.5\n", "header"),
    (b"id,similarity\n0,0.5\n", "missing"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ""),
    (b"id,similarity\n" + b"0,nan\n", ""),
    (b"id,similarity\n0,=cmd|' /C calc'!A0\n", ""),
])
def test_invalid_file_is_422_with_the_scorers_message_and_not_recorded(server, content, expected, comp):
    response = post(server, server.tokens["Ada"], content=content, name="mine.csv")
    assert response.status_code == 422
    message = response.json()["error"]
    assert expected in message and "\n" not in message
    # The message names the participant's file, never the server's folders.
    assert str(comp) not in message and ".incoming" not in message and ".upload" not in message
    assert recorded(server) == []
    assert server.get("/api/me", headers=auth(server.tokens["Ada"])).json()["remaining_today"] == 5


def test_missing_or_misplaced_file_field_is_422(server, good):
    token = server.tokens["Ada"]
    huge_name = post(server, token, good, name="x" * 100_000)
    assert huge_name.status_code == 422 and "malformed form" in huge_name.json()["error"]
    only_text = server.post("/api/submissions", headers=auth(token),
                            files={"description": (None, "hello")})
    assert only_text.status_code == 422 and "'file'" in only_text.json()["error"]
    wrong_name = server.post("/api/submissions", headers=auth(token),
                             files={"upload": ("a.csv", good.read_bytes(), "text/csv")})
    assert wrong_name.status_code == 422
    description_as_file = server.post("/api/submissions", headers=auth(token),
                                      files=[("file", ("a.csv", good.read_bytes(), "text/csv")),
                                             ("description", ("d.txt", b"x", "text/plain"))])
    assert description_as_file.status_code == 422
    two_files = server.post("/api/submissions", headers=auth(token),
                            files=[("file", ("a.csv", good.read_bytes(), "text/csv")),
                                   ("file", ("b.csv", good.read_bytes(), "text/csv"))])
    assert two_files.status_code == 422
    broken = server.post("/api/submissions", content=b"--x\r\ngarbage",
                         headers={**auth(token), "Content-Type": "multipart/form-data"})
    assert broken.status_code == 422
    assert recorded(server) == []


@pytest.mark.parametrize("name", ["../../../../etc/passwd", "..\\..\\evil.csv", "/abs/path.csv", "a\x00b.csv",
                                  "\u202egnp.csv", "x" * 300, " ", "CON", ".", "..", "ok<script>.csv"])
def test_hostile_file_names_never_choose_where_the_file_goes(server, good, comp, name):
    response = post(server, server.tokens["Ada"], good, name=name)
    assert response.status_code == 201
    (row,) = recorded(server)
    assert row["stored_path"] == f"submissions/{row['sha256']}.csv"
    assert "/" not in row["file_name"] and "\\" not in row["file_name"] and row["file_name"].isprintable()
    assert 0 < len(row["file_name"]) <= 120
    files = sorted(p.relative_to(comp) for p in comp.rglob("*") if p.is_file())
    assert Path("private/submissions") / f"{row['sha256']}.csv" in files
    assert not any("passwd" in str(p) or "evil" in str(p) for p in comp.parent.parent.rglob("*"))


# --- 429 -------------------------------------------------------------------------------


def test_daily_limit_counts_server_utc_days(server, good, clock, comp, tmp_path):
    clock.now = datetime(2026, 3, 1, 23, 58, tzinfo=timezone.utc)
    token = server.tokens["Ada"]
    for left in (4, 3, 2, 1, 0):
        response = post(server, token, good)
        assert response.status_code == 201 and response.json()["remaining_today"] == left
    refused = post(server, token, good)
    assert refused.status_code == 429 and "daily limit" in refused.json()["error"]
    # Invalid files and other participants are not affected.
    assert post(server, server.tokens["Bob"], good).status_code == 201
    clock.advance(minutes=1, seconds=59, microseconds=999_999)  # 23:59:59.999999: same day
    assert post(server, token, good).status_code == 429
    clock.advance(microseconds=1)  # midnight UTC: a new day
    accepted = post(server, token, good)
    assert accepted.status_code == 201 and accepted.json()["remaining_today"] == 4
    assert len([r for r in recorded(server) if r["participant"] == "Ada"]) == 6


def test_daily_limit_counts_days_of_the_given_time_zone(make_server, good, clock):
    # Auckland is UTC+13 in March: its midnight is 11:00 UTC.
    server = make_server(timezone_name="Pacific/Auckland")
    clock.now = datetime(2026, 3, 1, 10, 0, tzinfo=timezone.utc)
    token = server.tokens["Ada"]
    for _ in range(5):
        assert post(server, token, good).status_code == 201
    assert post(server, token, good).status_code == 429
    clock.now = datetime(2026, 3, 1, 11, 0, tzinfo=timezone.utc)
    assert post(server, token, good).status_code == 201


def test_no_daily_limit_when_the_competition_has_none(tmp_path, good, clock):
    comp = make_competition(tmp_path / "other", max_daily_submissions=None)
    app = create_app(comp, leaderboard=tmp_path / "lb2", clock=clock, export_interval=0)
    (_, token), = app.state.kit.db.add_participants(["Ann"], clock())
    with TestClient(app) as client:
        for _ in range(7):
            response = post(client, token, good)
            assert response.status_code == 201 and response.json()["remaining_today"] is None


# --- 403 -------------------------------------------------------------------------------


def test_deadline_closes_submissions(make_server, good, clock):
    server = make_server(deadline="2026-03-01T12:30:00Z")
    assert post(server, server.tokens["Ada"], good).status_code == 201
    clock.advance(minutes=30)
    response = post(server, server.tokens["Ada"], good)
    assert response.status_code == 403 and "deadline" in response.json()["error"]
    assert server.get("/api/info").json()["deadline"].startswith("2026-03-01T12:30:00")
    page = server.post("/submit", data={"token": server.tokens["Ada"]},
                       files={"file": ("a.csv", good.read_bytes(), "text/csv")})
    assert page.status_code == 403 and "deadline" in page.text


def test_deadline_from_competition_json_is_utc_whatever_the_server_time_zone(tmp_path, good, clock):
    comp = make_competition(tmp_path / "d")
    meta = json.loads((comp / "competition.json").read_text())
    meta["deadline"] = "2026-03-01T12:00:00"  # no zone: UTC (kit.competition.deadline), not --timezone's Paris time
    (comp / "competition.json").write_text(json.dumps(meta))
    app = create_app(comp, leaderboard=tmp_path / "lb3", clock=clock, timezone_name="Europe/Paris", export_interval=0)
    (_, token), = app.state.kit.db.add_participants(["Ann"], clock())
    with TestClient(app) as client:
        assert post(client, token, good).status_code == 403  # 12:00 UTC is the deadline itself


@pytest.mark.parametrize("options, message", [
    ({"deadline": "next friday"}, "deadline"),
    ({"timezone_name": "Mars/Olympus"}, "time zone"),
    ({"timezone_name": "../../etc/passwd"}, "time zone"),
    ({"max_upload_mb": 0}, "upload cap"),
    ({"max_upload_mb": float("nan")}, "upload cap"),
    ({"refresh_seconds": -1}, "refresh"),
    ({"upload_timeout": 0}, "upload timeout"),
    ({"upload_timeout": "soon"}, "upload timeout"),
    ({"request_timeout": float("nan")}, "request timeout"),
    ({"anonymous_timeout": -1}, "anonymous form timeout"),
    ({"uploads_per_token": 0}, "uploads per token"),
    ({"uploads_per_token": True}, "uploads per token"),
    ({"anonymous_per_address": 2.5}, "anonymous uploads per address"),
])
def test_bad_server_options_are_one_line_user_errors(comp, options, message):
    with pytest.raises(UserError, match=message):
        create_app(comp, **options)


def test_competition_without_its_answers_cannot_be_served(comp):
    (comp / "private" / "solution.csv").unlink()
    with pytest.raises(UserError, match="no answers"):
        create_app(comp)


# --- reveal ----------------------------------------------------------------------------


def test_reveal_needs_the_teacher_token_and_ranks_on_private(server, comp, tmp_path, clock):
    ids, truth, usage = read_solution(comp)
    # Ada is perfect on Public and poor on Private; Bob is the other way round.
    public = usage == "Public"
    ada = write_submission_file(tmp_path / "ada.csv", ids, [float(v) for v in truth + (~public) * 0.4])
    bob = write_submission_file(tmp_path / "bob.csv", ids, [float(v) for v in truth + public * 0.05])
    assert post(server, server.tokens["Ada"], ada).status_code == 201
    assert post(server, server.tokens["Bob"], bob).status_code == 201
    assert [r["participant"] for r in server.get("/api/leaderboard").json()["rows"]] == ["Ada", "Bob"]
    assert "private" not in server.get("/api/me", headers=auth(server.tokens["Ada"])).json()["submissions"][0]

    assert server.post("/api/reveal").status_code == 401
    assert server.post("/api/reveal", headers=auth("nonsense")).status_code == 401
    student = server.post("/api/reveal", headers=auth(server.tokens["Bob"]))
    assert student.status_code == 403 and "teacher" in student.json()["error"]
    assert server.get("/api/leaderboard").json()["revealed"] is False

    teacher = (comp / "private" / "teacher_token").read_text().strip()
    assert server.post("/api/reveal", headers=auth(teacher), json={"revealed": True}).json() == {"revealed": True}
    board = server.get("/api/leaderboard").json()
    assert board["revealed"] is True
    assert [r["participant"] for r in board["rows"]] == ["Bob", "Ada"]
    assert all(r["private"] is not None for r in board["rows"])
    assert board["rows"][0]["public_rank"] == 2
    assert "private" in server.get("/api/me", headers=auth(server.tokens["Ada"])).json()["submissions"][0]
    assert "private" in server.get("/").text
    # A reveal by mistake can be taken back; anything else in the body is refused.
    assert server.post("/api/reveal", headers=auth(teacher), json={"revealed": "no"}).status_code == 422
    assert server.post("/api/reveal", headers=auth(teacher), json=[1]).status_code == 422
    assert server.post("/api/reveal", headers={**auth(teacher), "Content-Type": "application/json"},
                       content=b"{not json").status_code == 422
    assert server.post("/api/reveal", headers=auth(teacher), json={"revealed": False}).json() == {"revealed": False}
    board = server.get("/api/leaderboard").json()
    assert board["revealed"] is False and "private" not in board["rows"][0]


# --- pages ------------------------------------------------------------------------------


HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.mark.filterwarnings("ignore:Glyph .* missing from font")
def test_pages_escape_everything_a_participant_wrote(server, good, clock):
    name, token = server.state.db.add_participant("Zoë 李雷", clock())
    assert post(server, token, good, description=HOSTILE, name='"><svg onload=alert(1)>.csv').status_code == 201
    for path in ("/",):
        html = server.get(path).text
        assert "<script>alert" not in html and "<img src=x" not in html and "<svg" not in html
        assert "&lt;script&gt;" in html and "Zoë 李雷" in html
    me = server.post("/me", data={"token": token}).text
    assert "<script>alert" not in me and "<svg" not in me and "&lt;script&gt;" in me
    # The API returns the text as data (JSON, nosniff); the live page inserts it as text.
    assert server.get("/api/leaderboard").json()["rows"][0]["model"] == HOSTILE
    js = server.get("/static/live.js").text
    assert "innerHTML" not in js and "textContent" in js


def test_description_is_one_short_printable_line(server, good):
    post(server, server.tokens["Ada"], good, description="a\nb\x1b[31m\u202e" + "z" * 500)
    (row,) = recorded(server)
    assert row["description"].isprintable() and "\n" not in row["description"]
    assert len(row["description"]) <= 200


def test_submit_page_works_without_javascript(server, good, comp):
    form = server.get("/submit")
    assert form.status_code == 200
    assert 'enctype="multipart/form-data"' in form.text and 'name="token"' in form.text
    assert form.text.index('name="token"') < form.text.index('name="file"')  # checked before the file arrives
    response = server.post("/submit", data={"token": server.tokens["Ada"], "description": "from the page"},
                           files={"file": ("mine.csv", good.read_bytes(), "text/csv")})
    assert response.status_code == 201
    from kit.scoring.scorer import Scorer

    assert f'id="score">{Scorer(comp).score(good).public:.5f}<' in response.text
    bad = server.post("/submit", data={"token": server.tokens["Ada"]},
                      files={"file": ("mine.csv", b"id,similarity\n0,<b>bold</b>\n", "text/csv")})
    assert bad.status_code == 422 and 'id="message"' in bad.text
    assert "<b>bold</b>" not in bad.text and "&lt;b&gt;bold&lt;/b&gt;" in bad.text
    nobody = server.post("/submit", data={"token": "wrong"}, files={"file": ("m.csv", good.read_bytes(), "text/csv")})
    assert nobody.status_code == 401 and "unknown token" in nobody.text
    assert len(recorded(server)) == 1


def test_me_page_takes_the_token_from_a_form_never_the_address(server, good):
    post(server, server.tokens["Ada"], good, description="first try")
    assert "first try" not in server.get(f"/me?token={server.tokens['Ada']}").text
    page = server.post("/me", data={"token": server.tokens["Ada"]})
    assert page.status_code == 200 and "first try" in page.text
    assert 'method="post"' in server.get("/me").text
    assert server.post("/me", data={"token": "nope"}).status_code == 401
    assert server.post("/me", files={"token": ("t.txt", b"x", "text/plain")}).status_code in (401, 422)


def test_leaderboard_page_table_and_plots(server, good):
    empty = server.get("/")
    assert empty.status_code == 200 and "No scored submissions yet" in empty.text
    assert server.get("/plots/history.png").status_code == 404
    post(server, server.tokens["Ada"], good)
    html = server.get("/").text
    assert "<td>Ada</td>" in html and 'src="/static/live.js"' in html
    for name in ("history", "bins"):
        image = server.get(f"/plots/{name}.png")
        assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    assert server.get("/plots/../../etc/passwd.png").status_code == 404
    assert server.get("/style.css").headers["content-type"].startswith("text/css")


@pytest.mark.parametrize("path", ["/", "/submit", "/me", "/api/leaderboard", "/api/info", "/no/such/page"])
def test_security_headers_on_every_response(server, path):
    response = server.get(path)
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


def test_errors_are_json_objects(server):
    missing = server.get("/no/such/page")
    assert missing.status_code == 404 and set(missing.json()) == {"error"}
    wrong_method = server.delete("/api/leaderboard")
    assert wrong_method.status_code == 405 and set(wrong_method.json()) == {"error"}


def test_api_is_documented(server):
    schema = server.get("/openapi.json").json()
    assert {"/api/submissions", "/api/leaderboard", "/api/me", "/api/reveal"} <= set(schema["paths"])
    responses = schema["paths"]["/api/submissions"]["post"]["responses"]
    assert {"201", "401", "403", "413", "422", "429"} <= set(responses)
    assert server.get("/docs").status_code == 200


def test_api_docs_page_works_offline(server):
    # Every script and style /docs loads is served by the kit itself: no CDN on a classroom network.
    import re

    page = server.get("/docs")
    assert page.status_code == 200 and "cdn." not in page.text and "https://" not in page.text
    assets = re.findall(r'(?:src|href)="(/docs/assets/[^"]+)"', page.text)
    assert len(assets) >= 2
    for asset in assets:
        assert server.get(asset).status_code == 200
    assert "https:" not in page.headers["content-security-policy"]
    assert server.get("/redoc").status_code == 404


# --- failures, restarts, exports --------------------------------------------------------


def test_a_score_that_is_not_finite_is_422(server, good, monkeypatch):
    real = server.state.scorer.score

    def overflowing(path):
        result = real(path)
        result.public = float("inf")
        return result

    monkeypatch.setattr(server.state.scorer, "score", overflowing)
    response = post(server, server.tokens["Ada"], good)
    assert response.status_code == 422 and "finite" in response.json()["error"]
    assert recorded(server) == []


@pytest.mark.parametrize("path", ["/api/submissions", "/submit"])
def test_internal_scoring_failure_is_500_counted_and_stores_nothing(server, good, monkeypatch, comp, path):
    """A file that breaks the scorer costs its sender an attempt, and the class nothing."""
    def broken(path):
        raise RuntimeError("scorer bug")

    monkeypatch.setattr(server.state.scorer, "score", broken)
    client = TestClient(server.app, raise_server_exceptions=False)
    token = server.tokens["Ada"]
    for left in (4, 3, 2, 1, 0):
        if path == "/api/submissions":
            response = post(client, token, good)
            assert response.status_code == 500 and set(response.json()) == {"error"}
        else:
            response = client.post(path, data={"token": token}, files={"file": ("g.csv", good.read_bytes())})
            assert response.status_code == 500 and 'id="message"' in response.text
        assert "scorer bug" not in response.text and "counts against" in response.text
        assert client.get("/api/me", headers=auth(token)).json()["remaining_today"] == left
    # The day's allowance is spent: the next one is refused before it is scored.
    assert post(client, token, good).status_code == 429
    assert recorded(server) == [] and server.get("/api/leaderboard").json()["rows"] == []
    assert not [p for p in (comp / "private" / "submissions").rglob("*") if p.is_file()]
    attempts = server.state.db.failed_attempts()
    assert len(attempts) == 5 and all("RuntimeError: scorer bug" == a["error"] for a in attempts)
    assert attempts[0]["participant"] == "Ada" and attempts[0]["sha256"] and attempts[0]["size"] == good.stat().st_size
    mine = client.get("/api/me", headers=auth(token)).json()["submissions"]
    assert [(m["status"], m["id"], "scorer bug" in json.dumps(m)) for m in mine] == [("error", None, False)] * 5
    assert "Bob" not in {a["participant"] for a in attempts}
    assert post(client, server.tokens["Bob"], good).status_code == 500  # Bob's allowance is his own


def test_a_failure_while_recording_is_500_counted_and_keeps_no_file(server, good, monkeypatch, comp):
    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(server.state.db, "add_submission", full_disk)
    client = TestClient(server.app, raise_server_exceptions=False)
    response = post(client, server.tokens["Ada"], good)
    assert response.status_code == 500 and set(response.json()) == {"error"}
    assert not [p for p in (comp / "private" / "submissions").rglob("*") if p.is_file()]
    assert len(server.state.db.failed_attempts()) == 1


def test_a_restart_loses_nothing(comp, tmp_path, good, clock):
    incoming = comp / "private" / "submissions" / ".incoming"
    incoming.mkdir(parents=True)
    stale, fresh = incoming / "old.upload", incoming / "new.upload"  # left by a killed server
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    os.utime(stale, (1, 1))
    app = create_app(comp, leaderboard=tmp_path / "lb", clock=clock, export_interval=0)
    assert not stale.exists() and fresh.exists()  # a young one may be another server's
    fresh.unlink()
    (_, token), = app.state.kit.db.add_participants(["Ann"], clock())
    with TestClient(app) as client:
        first = post(client, token, good).json()
        before = client.get("/api/leaderboard").json()
    app.state.kit.db.close()
    again = create_app(comp, leaderboard=tmp_path / "lb", clock=clock, export_interval=0)
    with TestClient(again) as client:
        assert client.get("/api/leaderboard").json() == before
        mine = client.get("/api/me", headers=auth(token)).json()
        assert [s["id"] for s in mine["submissions"]] == [first["id"]]
        assert mine["remaining_today"] == 4
    assert again.state.kit.db.schema_version == SCHEMA_VERSION
    assert again.state.kit.db.integrity_check() == "ok"


def test_exports_the_log_and_pages_for_kit_leaderboard(server, good, tmp_path, comp, capsys, clock):
    from kit.board.logfile import read_log
    from kit.cli import main

    post(server, server.tokens["Ada"], good, description="=HYPERLINK(\"http://x\")")
    clock.advance(seconds=1)
    post(server, server.tokens["Bob"], good)
    assert server.state.exporter.flush(60)
    log = read_log(tmp_path / "lb" / "practice.csv")
    assert list(log["participant"]) == ["Ada", "Bob"]
    # A spreadsheet opening the log shows the description instead of running it.
    assert "'=HYPERLINK" in (tmp_path / "lb" / "practice.csv").read_text()
    assert log["model"].iloc[0] == '=HYPERLINK("http://x")'
    assert log.attrs["skipped_lines"] == 0
    assert (tmp_path / "lb" / "practice.html").is_file() and (tmp_path / "lb" / "practice.md").is_file()
    capsys.readouterr()
    assert main(["leaderboard", "--competition", str(comp), "--leaderboard", str(tmp_path / "lb"), "--no-pages"]) == 0
    out = capsys.readouterr().out
    assert "Ada" in out and "Bob" in out


def test_participants_added_or_revoked_while_serving_take_effect_at_once(server, good, comp, capsys):
    from kit.cli import main

    assert main(["participants", "add", "--competition", str(comp), "Late Comer"]) == 0
    token = capsys.readouterr().out.splitlines()[1].split(",")[1]
    assert post(server, token, good).json()["participant"] == "Late Comer"
    assert main(["participants", "revoke", "--competition", str(comp), "late comer"]) == 0
    assert post(server, token, good).status_code == 401


def test_info_says_the_rules(make_server):
    info = make_server(max_upload_mb=2).get("/api/info").json()
    assert info["max_daily_submissions"] == 5 and info["timezone"] == "UTC" and info["rows"] == 60
    assert info["max_upload_bytes"] == 2 << 20 and info["deadline"] is None


@pytest.mark.filterwarnings("ignore:Glyph .* missing from font")
def test_unicode_participants_on_the_board(server, good, clock):
    for name in ("José Pérez", "李雷", "Ελένη"):
        _, token = server.state.db.add_participant(name, clock())
        assert post(server, token, good).json()["participant"] == name
    names = {r["participant"] for r in server.get("/api/leaderboard").json()["rows"]}
    assert {"José Pérez", "李雷", "Ελένη"} <= names


def test_database_file_is_in_private(server, comp):
    assert (comp / "private" / "classroom.sqlite").is_file()
    mode = os.stat(comp / "private" / "teacher_token").st_mode & 0o777
    assert mode == 0o600


# --- kit serve's command line (errors in process; the browser test runs it for real) ---


def test_serve_refuses_a_port_in_use(capsys, comp):
    from kit.cli import main
    from kit.commands.serve import listen

    taken = listen("127.0.0.1", 0)
    try:
        code = main(["serve", "--competition", str(comp), "--port", str(taken.getsockname()[1])])
    finally:
        taken.close()
    err = capsys.readouterr().err
    assert code == 2 and "cannot listen" in err and "Traceback" not in err


@pytest.mark.parametrize("argv, expected", [
    (["--timezone", "Nowhere/City"], "unknown time zone"),
    (["--deadline", "soon"], "deadline"),
    (["--host", "no such host.invalid"], "cannot listen"),
    (["--max-upload-mb", "-5"], "upload cap"),
    (["--upload-timeout", "0"], "upload timeout"),
    (["--upload-timeout", "nan"], "upload timeout"),
    (["--request-timeout", "-1"], "request timeout"),
    (["--request-timeout", "inf"], "request timeout"),
])
def test_serve_option_errors(capsys, comp, argv, expected):
    from kit.cli import main

    code = main(["serve", "--competition", str(comp), "--port", "0", *argv])
    err = capsys.readouterr().err
    assert code == 2 and expected in err


@pytest.mark.parametrize("option", ["--max-connections", "--uploads-per-token", "--anonymous-uploads"])
@pytest.mark.parametrize("value", ["0", "-3", "many", "2.5"])
def test_serve_counts_must_be_positive_whole_numbers(capsys, comp, option, value):
    from kit.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--competition", str(comp), option, value])
    assert exit_info.value.code == 2 and "expected an integer >= 1" in capsys.readouterr().err


def test_serve_unknown_competition_and_bad_port(capsys, tmp_path):
    from kit.cli import main

    assert main(["serve", "--competition", str(tmp_path / "none")]) == 2
    assert "not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--port", "70000"])
    assert exit_info.value.code == 2


def test_recorded_per_bin_rmse_splits_the_top_bin_like_the_log(make_server, good, comp):
    # With the private same-molecule flags, the server records what `kit score` logs.
    from kit.competition.folder import PAIR_DETAILS_FILE
    from kit.scoring.metrics import DIFFERENT_MOLECULE_BIN, SAME_MOLECULE_BIN

    ids, _, _ = read_solution(comp)
    (comp / PAIR_DETAILS_FILE).write_text("id,same_molecule\n" + "".join(f"{i},{i % 2}\n" for i in ids))
    server = make_server()
    assert post(server, server.tokens["Ada"], good).status_code == 201
    (row,) = recorded(server)
    assert {SAME_MOLECULE_BIN, DIFFERENT_MOLECULE_BIN} <= set(json.loads(row["per_bin_public"]))


# --- closing: deadline and reveal, re-checked when the upload is recorded ------------------


def teacher_of(comp):
    return (comp / "private" / "teacher_token").read_text().strip()


def slow_upload(server, good, middle, path="/api/submissions", token=None):
    """An upload whose body arrives in two pieces with ``middle`` (an action) in between."""
    token = token or server.tokens["Ada"]
    body = form_part("file", good.read_bytes(), filename="late.csv") + form_end()
    if path == "/submit":
        body = form_part("token", token) + body
    headers = [("authorization", f"Bearer {token}")] if path == "/api/submissions" else []
    return call_asgi(server.app, path, [body[:40], middle, body[40:]], headers=headers)


@pytest.mark.parametrize("path", ["/api/submissions", "/submit"])
def test_an_upload_finishing_after_the_deadline_is_refused(make_server, good, clock, path):
    """Open before the deadline, finish after it: refused, nothing recorded (the server time is when it arrived)."""
    server = make_server(deadline="2026-03-01T12:30:00Z")
    status, body, _ = slow_upload(server, good, lambda: clock.advance(minutes=31), path=path)
    assert status == 403 and "deadline" in body
    assert recorded(server) == []
    assert not list((server.state.private_dir / "submissions" / ".incoming").iterdir())


@pytest.mark.parametrize("path", ["/api/submissions", "/submit"])
def test_an_upload_finishing_after_the_reveal_is_refused(server, good, comp, path):
    status, body, _ = slow_upload(server, good, lambda: server.state.db.set_revealed(True), path=path)
    assert status == 403 and "the final ranking is revealed; submissions are closed" in body
    assert recorded(server) == []


def test_a_reveal_while_the_upload_is_scored_is_caught_when_it_is_recorded(server, good, comp, monkeypatch):
    """The reveal lands between the checks before scoring and the insert: the insert's transaction refuses."""
    real = server.state.scorer.score

    def reveal_meanwhile(path):
        result = real(path)
        revealed = server.post("/api/reveal", headers=auth(teacher_of(comp)), json={"revealed": True})
        assert revealed.json() == {"revealed": True}
        return result

    monkeypatch.setattr(server.state.scorer, "score", reveal_meanwhile)
    response = post(server, server.tokens["Ada"], good)
    assert response.status_code == 403 and "revealed" in response.json()["error"]
    assert recorded(server) == []
    assert not list((server.state.private_dir / "submissions" / ".incoming").iterdir())


def test_accepted_times_are_never_after_the_deadline(make_server, good, clock, monkeypatch):
    """The time recorded is the one checked: an upload that arrived in time keeps its time even if
    scoring ends after the deadline; a later one is refused."""
    server = make_server(deadline="2026-03-01T12:30:00Z")
    real = server.state.scorer.score

    def slow_scorer(path):
        clock.advance(minutes=40)  # the deadline passes while it is scored
        return real(path)

    clock.advance(minutes=29, seconds=59)
    monkeypatch.setattr(server.state.scorer, "score", slow_scorer)
    response = post(server, server.tokens["Ada"], good)
    assert response.status_code == 201
    assert response.json()["submitted_at"] == "2026-03-01T12:29:59.000000Z"
    assert [row["submitted_at"] for row in recorded(server)] == ["2026-03-01T12:29:59.000000Z"]
    assert post(server, server.tokens["Ada"], good).status_code == 403
    assert all(row["submitted_at"] < "2026-03-01T12:30:00" for row in recorded(server))


def test_reveal_closes_submissions_and_hiding_again_returns_to_closed(server, good, comp):
    teacher = teacher_of(comp)
    assert post(server, server.tokens["Ada"], good).status_code == 201
    assert server.post("/api/reveal", headers=auth(teacher), json={"revealed": True}).json() == {"revealed": True}
    response = post(server, server.tokens["Bob"], good)
    assert response.status_code == 403
    assert response.json() == {"error": "the final ranking is revealed; submissions are closed"}
    page = server.post("/submit", data={"token": server.tokens["Bob"]},
                       files={"file": ("a.csv", good.read_bytes(), "text/csv")})
    assert page.status_code == 403 and "revealed" in page.text
    assert len(recorded(server)) == 1
    assert server.post("/api/reveal", headers=auth(teacher), json={"revealed": False}).json() == {"revealed": False}
    response = post(server, server.tokens["Bob"], good)
    assert response.status_code == 403 and "closed the competition" in response.json()["error"]
    assert server.post("/api/open", headers=auth(teacher), json={"open": True}).json() == {"open": True, "state": "open"}
    assert post(server, server.tokens["Bob"], good).status_code == 201
    assert len(recorded(server)) == 2


def test_hiding_the_ranking_does_not_reopen_after_the_deadline(make_server, good, clock, comp):
    server = make_server(deadline="2026-03-01T12:30:00Z")
    teacher = teacher_of(comp)
    clock.advance(hours=1)
    server.post("/api/reveal", headers=auth(teacher), json={"revealed": True})
    server.post("/api/reveal", headers=auth(teacher), json={"revealed": False})
    response = post(server, server.tokens["Ada"], good)
    assert response.status_code == 403 and "deadline" in response.json()["error"]


def test_a_live_upload_held_open_across_the_deadline_and_reveal_is_refused(comp, tmp_path, good, clock):
    """The red-team case over a real socket: headers and part of the file before the deadline,
    the rest after the deadline and the reveal."""
    import socket
    import time

    app = create_app(comp, leaderboard=tmp_path / "lb", clock=clock, export_interval=0,
                     deadline="2026-03-01T12:30:00Z")
    (_, token), = app.state.kit.db.add_participants(["Mallory"], clock())
    body = form_part("file", good.read_bytes(), filename="late.csv") + form_end()
    with LiveServer(app) as live, socket.create_connection(("127.0.0.1", live.port), timeout=20) as sock:
        sock.sendall((f"POST /api/submissions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                      f"Content-Type: multipart/form-data; boundary=kitboundary\r\n"
                      f"Content-Length: {len(body)}\r\n\r\n").encode() + body[:40])
        time.sleep(0.3)
        clock.advance(hours=1)
        app.state.kit.db.set_revealed(True)
        sock.sendall(body[40:])
        answer = sock.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 403")
    assert app.state.kit.db.submissions() == []


# --- slow clients and anonymous forms ---------------------------------------------------


def test_an_upload_slower_than_the_upload_timeout_is_408(make_server, good):
    server = make_server(upload_timeout=0.2)
    status, body, _ = slow_upload(server, good, 0.6)
    assert status == 408 and json.loads(body)["error"].startswith("upload too slow")
    assert recorded(server) == []
    assert not list((server.state.private_dir / "submissions" / ".incoming").iterdir())


def test_any_request_slower_than_the_request_timeout_is_408(make_server):
    server = make_server(request_timeout=0.2)
    status, body, _ = call_asgi(server.app, "/me", [form_part("token", "abc"), 0.6, form_end()])
    assert status == 408 and set(json.loads(body)) == {"error"}


@pytest.mark.parametrize("steps, expected", [
    pytest.param(lambda tokens: [form_part("token", "not-a-token")], "unknown token", id="unknown token"),
    pytest.param(lambda tokens: [form_part("token", "")], "missing token", id="empty token"),
    pytest.param(lambda tokens: [form_part("token", "x" * 5000)], "unknown token", id="huge token"),
    pytest.param(lambda tokens: [form_part("description", "hi")], "missing token", id="no token"),
    pytest.param(lambda tokens: [form_part("token", tokens["Ada"], filename="t.txt")], "malformed form",
                 id="token as a file"),
    pytest.param(lambda tokens: [], "missing token", id="file first, token after"),
])
def test_anonymous_form_upload_is_refused_before_the_file_is_taken(server, steps, expected):
    """A 64 MB file behind a bad or missing token: 401 after at most a chunk or two, nothing stored."""
    head = steps(server.tokens)
    file_head = form_part("file", b"", filename="big.csv")[:-2]  # the file part, left open
    chunks = [b"".join(head) + file_head] + [b"0,0.5\n" * 10_000] * 1000
    status, body, read = call_asgi(server.app, "/submit", chunks)
    assert status == (422 if expected == "malformed form" else 401) and expected in body
    assert read <= 2
    assert recorded(server) == []
    assert not list((server.state.private_dir / "submissions" / ".incoming").iterdir())


def test_revoked_token_on_the_form_is_refused_before_the_file(server, clock):
    server.state.db.revoke_participant("Bob", clock())
    chunks = [form_part("token", server.tokens["Bob"]) + form_part("file", b"", filename="b.csv")[:-2]]
    status, body, read = call_asgi(server.app, "/submit", chunks + [b"0,0.5\n" * 10_000] * 1000)
    assert status == 401 and "revoked" in body and read <= 2


def test_form_with_the_token_after_a_large_description_is_refused(server):
    chunks = [form_part("description", "d" * 100)] + [b"x" * 70_000] * 100
    status, body, read = call_asgi(server.app, "/submit", chunks)
    assert status in (401, 422) and read <= 3


# --- reveal takes only its JSON ------------------------------------------------------------


def reveal(server, comp, content_type, body):
    headers = {**auth(teacher_of(comp)), **({"Content-Type": content_type} if content_type else {})}
    return server.post("/api/reveal", headers=headers, content=body)


@pytest.mark.parametrize("content_type", [
    None, "application/x-www-form-urlencoded", "text/plain", "application/json-seq", "application/jsonx",
    "application/json+x", "application/ld+json", "text/json", "application/json; charset=latin-1",
    "application/json; charset=utf-16", "application/json; boundary=x", "multipart/form-data; boundary=x",
    "application/json, text/plain", " ", "application/json;charset=utf-8;charset=latin-1",
])
def test_reveal_with_another_content_type_is_415_and_reveals_nothing(server, comp, content_type):
    response = reveal(server, comp, content_type, b'{"revealed": true}')
    assert response.status_code == 415 and set(response.json()) == {"error"}
    assert "application/json" in response.json()["error"]
    assert server.state.db.revealed is False


@pytest.mark.parametrize("body", [
    b"", b"true", b'"true"', b"1", b"0", b"null", b"[]", b'[{"revealed": true}]', b"{}", b'{"revealed": "true"}',
    b'{"revealed": "false"}', b'{"revealed": 1}', b'{"revealed": 0}', b'{"revealed": null}', b'{"revealed": []}',
    b'{"Revealed": true}', b'{"revealed": true, "revealed": false}', b'{"revealed": false, "revealed": true}',
    b'{"revealed": true, "also": 1}', b'{"revealed": NaN}', b'{"revealed": true} x', b'{"revealed": tru}',
    '{"revealed": true}'.encode("utf-16"), b'\xef\xbb\xbf{"revealed": true}', b'{"revealed": true\xff}',
    b"[" * 500 + b"]" * 500, b"revealed=true",
])
def test_reveal_body_that_is_not_the_object_is_422_and_reveals_nothing(server, comp, body):
    response = reveal(server, comp, "application/json", body)
    assert response.status_code == 422 and set(response.json()) == {"error"}
    assert server.state.db.revealed is False


@pytest.mark.parametrize("content_type", ["application/json", "Application/JSON", "application/json; charset=utf-8",
                                          'application/json; charset="UTF-8"', "application/json;charset=utf8"])
def test_reveal_takes_json_with_a_utf8_charset(server, comp, content_type):
    assert reveal(server, comp, content_type, b'{"revealed": true}').json() == {"revealed": True}
    assert server.state.db.revealed is True
    assert reveal(server, comp, content_type, b' {\n"revealed" : false }').json() == {"revealed": False}
    assert server.state.db.revealed is False


def test_reveal_body_over_its_cap_is_413(server, comp):
    body = b'{"revealed": true' + b" " * 2000 + b"}"
    assert reveal(server, comp, "application/json", body).status_code == 413
    assert server.state.db.revealed is False


def test_reveal_sent_as_a_form_by_curl_does_not_reveal(server, comp):
    """curl -d '{"revealed": false}' sends application/x-www-form-urlencoded: refused, not read as a reveal."""
    server.state.db.set_revealed(False)
    response = server.post("/api/reveal", headers=auth(teacher_of(comp)), data={'{"revealed": false}': ""})
    assert response.status_code == 415 and server.state.db.revealed is False


# --- who may hold an upload open ---------------------------------------------------------------


def test_the_form_token_may_come_from_the_header_or_a_cookie_then_the_file_may_come_first(server, good):
    file_first = {"file": ("g.csv", good.read_bytes(), "text/csv")}
    by_header = server.post("/submit", headers=auth(server.tokens["Ada"]), files=file_first)
    assert by_header.status_code == 201
    server.cookies.set("kit_token", server.tokens["Bob"])
    try:
        by_cookie = server.post("/submit", files=file_first)
        assert by_cookie.status_code == 201
        me = server.post("/me", data={})
        assert me.status_code == 200 and "Bob" in me.text
        server.cookies.set("kit_token", "forged")
        assert server.post("/submit", files=file_first).status_code == 401
    finally:
        server.cookies.clear()
    assert [row["participant"] for row in recorded(server)] == ["Ada", "Bob"]


def test_an_anonymous_form_must_begin_with_its_token(server, good):
    """Without a header or cookie the token is the first field; anything first is refused at once."""
    for first in ("description", "file", "tokenx", "Token"):
        chunks = [form_part(first, "x", filename="f.csv" if first == "file" else None)] + [b"0,0.5\n" * 10_000] * 100
        status, body, read = call_asgi(server.app, "/submit", chunks)
        assert status == 401 and "first field must be the token" in body and read <= 1
    status, body, read = call_asgi(server.app, "/me", [form_part("description", "x"), form_end()])
    assert status == 401 and "first field must be the token" in body


def test_uploads_open_at_once_are_capped_per_participant_and_per_address(make_server, good):
    server = make_server(uploads_per_token=2, anonymous_per_address=3)
    ada = server.state.db.participant_for_token(server.tokens["Ada"])
    uploads = server.state.uploads
    for _ in range(2):
        uploads.acquire(("participant", ada.id), 2)
    busy = post(server, server.tokens["Ada"], good)
    assert busy.status_code == 429 and "too many uploads at once" in busy.json()["error"]
    assert post(server, server.tokens["Bob"], good).status_code == 201  # Bob's are his own
    by_form = server.post("/submit", data={"token": server.tokens["Ada"]}, files={"file": ("g.csv", good.read_bytes())})
    assert by_form.status_code == 429  # the form's token is counted as the participant's too
    for _ in range(3):
        uploads.acquire(("address", "testclient"), 3)
    crowded = server.post("/submit", data={"token": server.tokens["Bob"]}, files={"file": ("g.csv", good.read_bytes())})
    assert crowded.status_code == 429 and "network address" in crowded.text
    assert server.post("/me", data={"token": server.tokens["Bob"]}).status_code == 429
    # A header names the participant before the body: the address is not counted then.
    assert server.post("/submit", headers=auth(server.tokens["Bob"]),
                       files={"file": ("g.csv", good.read_bytes())}).status_code == 201
    assert uploads.open(("address", "testclient")) == 3 and uploads.open(("participant", ada.id)) == 2


@pytest.mark.parametrize("path, make", [
    ("/api/submissions", lambda s, good: post(s, s.tokens["Ada"], good)),
    ("/api/submissions", lambda s, good: post(s, s.tokens["Ada"], content=b"id,similarity\n")),
    ("/api/submissions", lambda s, good: post(s, "wrong", good)),
    ("/submit", lambda s, good: s.post("/submit", data={"token": s.tokens["Ada"]}, files={"file": ("g.csv", b"x")})),
    ("/submit", lambda s, good: s.post("/submit", data={"token": "wrong"}, files={"file": ("g.csv", b"x")})),
    ("/submit", lambda s, good: s.post("/submit", data={"description": "x"}, files={"file": ("g.csv", b"x")})),
    ("/me", lambda s, good: s.post("/me", data={"token": s.tokens["Ada"]})),
    ("/me", lambda s, good: s.post("/me", data={"token": "wrong"})),
])
def test_every_request_gives_its_upload_slots_back(server, good, path, make):
    for _ in range(40):  # more than any cap: a slot kept by mistake would show as 429
        response = make(server, good)
        assert "at once" not in response.text, response.text[:200]
    assert server.state.uploads._open == {}


def test_slow_anonymous_form_is_408_at_the_anonymous_timeout_then_the_upload_timeout_applies(make_server, good):
    server = make_server(anonymous_timeout=0.2, upload_timeout=5)
    open_token = form_part("token", server.tokens["Ada"])[:-6]  # the token part, still arriving
    status, body, _ = call_asgi(server.app, "/submit", [open_token, 0.6, b"\r\n", form_end()])
    assert status == 408 and "did not arrive within 0.2 s" in body
    # Once the token has arrived, the file has the whole upload timeout.
    head = form_part("token", server.tokens["Ada"]) + form_part("file", b"", filename="g.csv")[:-2]
    status, body, _ = call_asgi(server.app, "/submit", [head, 0.6, good.read_bytes() + b"\r\n", form_end()])
    assert status == 201, body


def test_me_form_over_its_cap_is_413(server):
    for kind in ("multipart", "urlencoded"):
        if kind == "multipart":
            response = server.post("/me", data={"token": server.tokens["Ada"]}, files={"x": ("f", b"x" * 70_000)})
        else:
            response = server.post("/me", content=b"token=" + b"x" * 70_000,
                                   headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert response.status_code in (413, 422), kind


@pytest.mark.parametrize("url", ["/?token=abc", "/api/leaderboard?access_token=abc", "/me?TOKEN=abc",
                                 "/api/me?kit_token=abc", "/submit?key=abc", "/api/info?x=1&api%5Fkey=abc",
                                 "/no/such?token", "/?Authorization=Bearer+abc"])
def test_a_token_in_the_address_is_refused(server, url):
    response = server.get(url)
    assert response.status_code == 400 and "never goes in the address" in response.json()["error"]
    assert "content-security-policy" in response.headers
    assert server.post(url, headers=auth(server.tokens["Ada"])).status_code == 400


def test_an_address_without_a_token_is_served(server):
    assert server.get("/?view=projector").status_code == 200 and server.get("/api/info?tokens_left").status_code == 400


# --- malformed requests are the sender's ---------------------------------------------------------


@pytest.mark.parametrize("content_type, body", [
    ("multipart/form-data", form_part("file", b"x", filename="a.csv") + form_end()),  # no boundary
    ("multipart/form-data; boundary=other", form_part("file", b"x", filename="a.csv") + form_end()),
    ("multipart/form-data; boundary=kitboundary", b"--kitboundary\r\ngarbage"),
    ("multipart/form-data; boundary=kitboundary", b"--kitboundary\r\nContent-Disposition: form-data\r\n\r\nx\r\n"
     + form_end()),  # a part without a name
    ("multipart/form-data; boundary=kitboundary", b"--kitboundary\r\nNo colon here\r\n\r\nx\r\n" + form_end()),
    ("multipart/form-data; boundary=kitboundary", b"--kitboundary\r\nX: " + b"h" * 100_000 + b"\r\n\r\n"),
    ("multipart/form-data; boundary=kitboundary; charset=no-such-codec",
     form_part("file", b"x", filename="a.csv") + form_end()),
    ("multipart/form-data; boundary=kitboundary", b"".join(form_part(f"f{i}", "x") for i in range(20)) + form_end()),
    ("multipart/form-data; boundary=kitboundary", form_part("file", b"x", filename="a.csv")
     + form_part("file", b"y", filename="b.csv") + form_end()),
    ("multipart/form-data; boundary=kitboundary", form_part("description", b"\xff\xfe" * 10) + form_end()),
    ("multipart/form-data; boundary=" + "b" * 5000, b"--" + b"b" * 5000 + b"--\r\n"),
    ("multipart/form-data; boundary=kitboundary", b""),
])
def test_malformed_multipart_is_a_4xx_with_one_line_and_stores_nothing(server, comp, content_type, body):
    for path, headers in (("/api/submissions", auth(server.tokens["Ada"])), ("/submit", auth(server.tokens["Ada"])),
                          ("/submit", {})):
        response = TestClient(server.app, raise_server_exceptions=False).post(
            path, content=body, headers={**headers, "Content-Type": content_type})
        assert 400 <= response.status_code < 500, (path, response.status_code, response.text[:200])
        if path.startswith("/api"):
            assert set(response.json()) == {"error"} and "\n" not in response.json()["error"]
    assert recorded(server) == [] and server.state.db.failed_attempts() == []
    assert not [p for p in (comp / "private" / "submissions").rglob("*") if p.is_file()]


@pytest.mark.parametrize("name", ["a\r\nX-Injected: 1.csv", "\x1b[31mred.csv", "tab\there.csv", "\u200bzero.csv",
                                  "\u2066isolate\u2069.csv", "%00null.csv", "a\x7fdel.csv", "nul\x00.csv",
                                  "q\"uote.csv"])
def test_file_names_with_control_characters_are_shown_as_one_printable_line(server, good, name):
    response = post(server, server.tokens["Ada"], good, name=name)
    assert response.status_code == 201
    shown = response.json()["file"]
    assert shown.isprintable() and "\n" not in shown and "\x1b" not in shown and "\u2066" not in shown
    assert recorded(server)[0]["file_name"] == shown


# --- scores as shown ------------------------------------------------------------------------------


def set_scores(comp, scores):
    """Overwrite recorded scores (id -> (public, private)) as a scorer with more digits would have written them."""
    import sqlite3

    with sqlite3.connect(comp / "private" / "classroom.sqlite") as conn:
        for submission_id, (public, private) in scores.items():
            conn.execute("UPDATE submissions SET public = ?, private = ? WHERE id = ?",
                         (public, private, submission_id))


def test_every_score_a_participant_sees_has_5_decimals_and_ranks_use_them(server, good, clock, comp):
    first = post(server, server.tokens["Bob"], good).json()["id"]
    clock.advance(minutes=1)
    second = post(server, server.tokens["Ada"], good).json()["id"]
    # Ada is better by less than the last shown digit: equal as shown, so Bob (earlier) ranks first.
    set_scores(comp, {first: (0.1234564, 0.2000004), second: (0.1234561, 0.2000001)})
    server.state.db.set_revealed(False)  # a new version: the standings are read again
    rows = server.get("/api/leaderboard").json()["rows"]
    assert [(r["participant"], r["rank"], r["public"]) for r in rows] == [("Bob", 1, 0.12346), ("Ada", 2, 0.12346)]
    mine = server.get("/api/me", headers=auth(server.tokens["Ada"])).json()["submissions"]
    assert [m["public"] for m in mine] == [0.12346]
    page = server.get("/").text
    assert "0.12346" in page and "0.1234561" not in page and "0.1234564" not in page
    assert "0.1234561" not in server.post("/me", data={"token": server.tokens["Ada"]}).text
    server.post("/api/reveal", headers=auth(teacher_of(comp)), json={"revealed": True})
    rows = server.get("/api/leaderboard").json()["rows"]
    assert [(r["participant"], r["private"]) for r in rows] == [("Bob", 0.2), ("Ada", 0.2)]
    assert server.get("/api/me", headers=auth(server.tokens["Ada"])).json()["submissions"][0]["private"] == 0.2
    assert server.get("/api/info").json()["decimals"] == 5
    # The teacher's database keeps every digit.
    assert [row["public"] for row in recorded(server)] == [0.1234564, 0.1234561]


def test_per_bin_scores_on_the_pages_have_5_decimals(server, good):
    from kit.server.state import standings_now

    post(server, server.tokens["Ada"], good)
    current, _ = standings_now(server.state)
    for bins in current.log["per_bin_public"]:
        assert all(v is None or round(v, 5) == v for v in bins.values())
    assert server.get("/plots/bins.png").status_code == 200


@pytest.mark.parametrize("headers", [{"X-Big": "a" * 20_000}, {f"X-{i}": "y" for i in range(150)},
                                     {"Authorization": "Bearer " + "t" * 20_000}])
def test_a_huge_request_head_is_431(server, headers):
    response = server.get("/api/leaderboard", headers=headers)
    assert response.status_code == 431 and set(response.json()) == {"error"}


@pytest.mark.parametrize("path", ["/api/submissions", "/submit"])
def test_a_spent_allowance_is_429_before_the_file_is_taken(make_server, good, path):
    server = make_server()
    for _ in range(5):
        assert post(server, server.tokens["Ada"], good).status_code == 201
    head = form_part("token", server.tokens["Ada"]) + form_part("file", b"", filename="big.csv")[:-2]
    bearer = [("Authorization", f"Bearer {server.tokens['Ada']}")] if path.startswith("/api") else []
    status, body, read = call_asgi(server.app, path, [head] + [b"0,0.5\n" * 10_000] * 1000, headers=bearer)
    assert status == 429 and "daily limit" in body and read <= 2


def test_a_competition_asking_for_more_decimals_still_shows_5(tmp_path, good, clock):
    comp = make_competition(tmp_path / "data8")
    meta_path = comp / "competition.json"
    meta = json.loads(meta_path.read_text())
    meta["metric"]["decimals"] = 9
    meta_path.write_text(json.dumps(meta))
    with TestClient(create_app(comp, leaderboard=tmp_path / "lb8", clock=clock, export_interval=0)) as client:
        token = dict(client.app.state.kit.db.add_participants(["Ada"], clock()))["Ada"]
        body = post(client, token, good).json()
        assert body["public"] == round(body["public"], 5)
        assert client.get("/api/info").json()["decimals"] == 5
        assert 'data-decimals="5"' in client.get("/").text
        shown = client.post("/submit", data={"token": token}, files={"file": ("g.csv", good.read_bytes())}).text
        assert f'id="score">{body["public"]:.9f}<' in shown  # nine places asked for, the last four zeros


def test_a_failure_while_storing_the_upload_is_500_and_counted(server, good, monkeypatch, comp):
    import kit.server.upload as upload_module

    def full_disk(state, upload):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(upload_module, "_stage", full_disk)
    client = TestClient(server.app, raise_server_exceptions=False)
    response = post(client, server.tokens["Ada"], good)
    assert response.status_code == 500 and "counts against" in response.json()["error"]
    (attempt,) = server.state.db.failed_attempts()
    assert "No space left" in attempt["error"] and attempt["size"] == 0
    assert not [p for p in (comp / "private" / "submissions").rglob("*") if p.is_file()]


@pytest.mark.parametrize("part_head", [
    b'Content-Disposition: form-data; name="file"; filename="' + b"a" * 20_000 + b'.csv"',
    b'Content-Disposition: form-data; name="file"; filename="a.csv"\r\n' + b"X: y\r\n" * 40,
])
def test_a_part_with_huge_headers_is_422(server, part_head):
    """python-multipart bounds a part's header lines and their number: a 4xx, never a 5xx."""
    body = form_part("token", server.tokens["Ada"]) + b"--kitboundary\r\n" + part_head + b"\r\n\r\n0,1\r\n" + form_end()
    for path, headers in (("/api/submissions", [("Authorization", f"Bearer {server.tokens['Ada']}")]), ("/submit", [])):
        status, text, _ = call_asgi(server.app, path, [body], headers=headers)
        assert status == 422 and "malformed form" in text
    assert recorded(server) == []


def test_a_database_of_the_first_schema_gains_the_failed_attempts_table(tmp_path, clock):
    import sqlite3

    from kit.board.migrations import _MIGRATIONS, _statements
    from kit.board.store import Database

    path = tmp_path / "classroom.sqlite"
    with sqlite3.connect(path) as conn:
        for statement in _statements(_MIGRATIONS[0]):
            conn.execute(statement)
        conn.execute("INSERT INTO participants (name, key, token_sha256, created_at) VALUES ('Ada', 'ada', 'h', 't')")
        conn.execute("PRAGMA user_version = 1")
    db = Database(path)
    assert db.schema_version == SCHEMA_VERSION >= 4
    assert db.finals() == {}  # and the final choices' table (step 4)
    (ada,) = db.participants()
    db.add_failed_attempt({"participant_id": ada["id"], "attempted_at": clock(), "sha256": "ab", "file_name": "f.csv",
                           "size": 3, "error": "RuntimeError: x"})
    window = (clock() - timedelta(hours=1), clock() + timedelta(hours=1))
    assert db.count_failed(ada["id"], *window) == 1 and db.count_scored(ada["id"], *window) == 0
    assert db.count_failed(ada["id"], clock() + timedelta(hours=1), clock() + timedelta(hours=2)) == 0
    assert [a["participant"] for a in db.failed_attempts()] == ["Ada"] and db.failed_attempts(ada["id"] + 1) == []


def test_a_proxy_login_in_the_authorization_header_leaves_the_form_token_in_charge(server, good):
    """A reverse proxy with a Basic login makes the browser send its own Authorization header."""
    basic = {"Authorization": "Basic dGVhY2hlcjpwYXNz"}
    page = server.post("/submit", headers=basic, data={"token": server.tokens["Ada"]},
                       files={"file": ("g.csv", good.read_bytes())})
    assert page.status_code == 201
    assert server.post("/me", headers=basic, data={"token": server.tokens["Ada"]}).status_code == 200
    assert server.post("/me", headers=basic, data={"token": "wrong"}).status_code == 401
