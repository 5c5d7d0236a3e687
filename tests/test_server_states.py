"""The competition's states on the server (open, closed, revealed) and final submissions (Kaggle's rule)."""
import pytest

pytest.importorskip("fastapi")

from builders import perfect_submission  # noqa: E402
from kit.board.phases import CLOSED, OPEN, REVEALED, decide_phase  # noqa: E402
from server_builders import START  # noqa: E402
from test_server import auth, clock, comp, good, make_server, post, server, teacher_of  # noqa: E402,F401


def send(server, comp, path, body, token=None, content_type="application/json"):
    headers = {**auth(token or teacher_of(comp)), "Content-Type": content_type}
    return server.post(path, headers=headers, content=body)


def state_of(server):
    return server.get("/api/info").json()["state"]


# --- one function decides the state ----------------------------------------------------------


@pytest.mark.parametrize("settings, deadline, minutes, expected", [
    ({}, None, 0, (OPEN, None)),
    ({}, START, -1, (OPEN, None)),
    ({}, START, 0, (CLOSED, "deadline")),
    ({"closed": "1"}, None, 0, (CLOSED, "closed")),
    ({"closed": "0"}, None, 0, (OPEN, None)),
    ({"revealed": "1"}, None, 0, (REVEALED, "revealed")),
    ({"revealed": "1", "closed": "0"}, START, 5, (REVEALED, "revealed")),
    ({"revealed": "0", "closed": "1"}, None, 0, (CLOSED, "closed")),
    ({"deadline": ""}, START, 5, (OPEN, None)),  # the teacher removed the deadline
    ({"deadline": "2026-03-01T13:00:00.000000Z"}, START, 5, (OPEN, None)),  # and set a later one
    ({"deadline": "2026-03-01T11:00:00.000000Z"}, None, -5, (CLOSED, "deadline")),
])
def test_decide_phase(settings, deadline, minutes, expected):
    from datetime import timedelta

    phase = decide_phase(settings, deadline, START + timedelta(minutes=minutes))
    assert (phase.state, phase.reason) == expected
    assert phase.open is (expected[0] == OPEN)


def test_teacher_closes_and_reopens(server, good, comp):
    assert state_of(server) == "open"
    assert send(server, comp, "/api/open", b'{"open": false}').json() == {"open": False, "state": "closed"}
    assert state_of(server) == "closed"
    response = post(server, server.tokens["Ada"], good)
    assert response.status_code == 403 and "closed" in response.json()["error"]
    assert "Submissions are closed" in server.get("/submit").text and 'id="file"' not in server.get("/submit").text
    assert "submissions are closed" in server.get("/").text
    assert send(server, comp, "/api/open", b'{"open": true}').json() == {"open": True, "state": "open"}
    assert post(server, server.tokens["Ada"], good).status_code == 201
    assert 'id="file"' in server.get("/submit").text


def test_reopening_is_refused_after_the_deadline_and_while_revealed(make_server, clock, comp, good):
    server = make_server(deadline="2026-03-01T12:30:00Z")
    clock.advance(hours=1)
    assert state_of(server) == "closed"
    response = send(server, comp, "/api/open", b'{"open": true}')
    assert response.status_code == 409 and "deadline" in response.json()["error"]
    # A later deadline re-opens.
    moved = send(server, comp, "/api/deadline", b'{"deadline": "2026-03-01T14:00:00Z"}')
    assert moved.json() == {"deadline": "2026-03-01T14:00:00.000000Z", "state": "open"}
    assert server.get("/api/info").json()["deadline"] == "2026-03-01T14:00:00.000000Z"
    assert post(server, server.tokens["Ada"], good).status_code == 201
    send(server, comp, "/api/reveal", b'{"revealed": true}')
    response = send(server, comp, "/api/open", b'{"open": true}')
    assert response.status_code == 409 and "revealed" in response.json()["error"]
    assert state_of(server) == "revealed"
    send(server, comp, "/api/reveal", b'{"revealed": false}')
    assert state_of(server) == "closed"


def test_the_api_documents_the_new_routes(server):
    paths = set(server.get("/openapi.json").json()["paths"])
    assert {"/api/open", "/api/deadline", "/api/final"} <= paths


def test_deadline_with_an_offset_and_removed(make_server, clock, comp):
    server = make_server(timezone_name="Europe/Paris", deadline="2026-03-01T12:30:00Z")
    moved = send(server, comp, "/api/deadline", b'{"deadline": "2026-03-01T12:00:00+01:00"}')  # 11:00 UTC: passed
    assert moved.json() == {"deadline": "2026-03-01T11:00:00.000000Z", "state": "closed"}
    assert send(server, comp, "/api/deadline", b'{"deadline": null}').json() == {"deadline": None, "state": "open"}
    assert server.get("/api/info").json()["deadline"] is None
    # One meaning everywhere (kit.competition.deadline): a time without zone is UTC, whatever --timezone.
    zoneless = send(server, comp, "/api/deadline", b'{"deadline": "2026-03-01T11:00:00"}')
    assert zoneless.json() == {"deadline": "2026-03-01T11:00:00.000000Z", "state": "closed"}


@pytest.mark.parametrize("path, body", [
    ("/api/open", b'{"open": "true"}'), ("/api/open", b'{"open": 1}'), ("/api/open", b'{"open": null}'),
    ("/api/open", b'{"open": true, "open": false}'), ("/api/open", b'{"closed": true}'), ("/api/open", b"true"),
    ("/api/open", b'{"open": true, "x": 1}'), ("/api/open", b"[" * 500 + b"]" * 500),
    ("/api/deadline", b'{"deadline": "tomorrow"}'), ("/api/deadline", b'{"deadline": 1767225600}'),
    ("/api/deadline", b'{"deadline": ""}'), ("/api/deadline", b'{"deadline": "2026-13-01"}'),
    ("/api/deadline", b'{"deadline": "' + b"2" * 100 + b'"}'), ("/api/deadline", b'{"deadline": []}'),
    ("/api/deadline", b'{"deadline": NaN}'), ("/api/deadline", b"{}"),
    ("/api/deadline", b'{"deadline": "0001-01-01T00:00:00+01:00"}'),  # before year 1 in UTC
    ("/api/deadline", b'{"deadline": "9999-12-31T23:59:59-01:00"}'),  # after year 9999 in UTC
    ("/api/deadline", b'{"deadline": "0999-01-01T00:00:00Z"}'), ("/api/deadline", b'{"deadline": "2026-03-01T12:00+99:00"}'),
    ("/api/deadline", b'{"deadline": "2026-03-01T12:00:00\\u0000"}'),
    ("/api/deadline", '{"deadline": "2026-03-01T12:00:00Z"}'.encode("utf-16")),
])
def test_teacher_settings_take_only_their_json_object(server, comp, path, body):
    response = send(server, comp, path, body)
    assert response.status_code == 422 and "expected" in response.json()["error"]
    assert "\x00" not in response.json()["error"]
    assert not set(server.state.db.settings()) & {"closed", "deadline"}
    assert state_of(server) == "open"


@pytest.mark.parametrize("path, body", [("/api/open", b'{"open": false}'),
                                        ("/api/deadline", b'{"deadline": "2026-03-01T00:00:00Z"}')])
@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data",
                                          "application/json; charset=latin-1", ""])
def test_teacher_settings_refuse_other_content_types(server, comp, path, body, content_type):
    assert send(server, comp, path, body, content_type=content_type).status_code == 415
    assert state_of(server) == "open"


@pytest.mark.parametrize("path, body", [("/api/open", b'{"open": false}'),
                                        ("/api/deadline", b'{"deadline": "2026-03-01T00:00:00Z"}')])
def test_teacher_settings_need_the_teacher_token(server, comp, path, body):
    assert server.post(path, content=body, headers={"Content-Type": "application/json"}).status_code == 401
    assert send(server, comp, path, body, token="x" * 40).status_code == 401
    response = send(server, comp, path, body, token=server.tokens["Ada"])
    assert response.status_code == 403 and "teacher token" in response.json()["error"]
    assert send(server, comp, path, b"{" + b" " * 2000 + b"}").status_code == 413
    assert state_of(server) == "open"


# --- final submissions -------------------------------------------------------------------------


def choose(server, token, ids):
    return server.post("/api/final", headers=auth(token), json={"submissions": ids})


@pytest.fixture
def three(server, comp, tmp_path, clock):
    """Ada's three submissions and Bob's one: ids (Ada's first, second, third, Bob's)."""
    ids = []
    for i, (who, noise) in enumerate([("Ada", 0.05), ("Ada", 0.3), ("Ada", 0.2), ("Bob", 0.1)]):
        path = perfect_submission(comp, tmp_path / f"s{i}.csv", noise=noise, seed=i)
        clock.advance(minutes=1)
        response = post(server, server.tokens[who], path)
        assert response.status_code == 201
        ids.append(response.json()["id"])
    return ids


def test_finals_are_chosen_shown_and_taken_back(server, three):
    ada = server.tokens["Ada"]
    assert choose(server, ada, [three[2], three[1]]).json() == {"participant": "Ada",
                                                                 "submissions": sorted(three[1:3])}
    me = server.get("/api/me", headers=auth(ada)).json()
    assert [s["final"] for s in me["submissions"]] == [False, True, True]
    assert me["finals"] == sorted(three[1:3])
    assert choose(server, ada, [three[0]]).json()["submissions"] == [three[0]]  # replaces the choice
    assert choose(server, ada, []).json()["submissions"] == []
    assert not any(s["final"] for s in server.get("/api/me", headers=auth(ada)).json()["submissions"])


@pytest.mark.parametrize("ids", [
    "three", "bob's", "unknown", "zero", "negative", "string", "float", "bool", "null", "nested", "huge",
])
def test_finals_refuse_what_is_not_theirs_or_too_many(server, three, ids):
    body = {"three": three[:3], "bob's": [three[3]], "unknown": [9999], "zero": [0], "negative": [-1],
            "string": ["1"], "float": [1.0], "bool": [True], "null": None, "nested": [[three[0]]],
            "huge": [10 ** 30]}[ids]
    response = choose(server, server.tokens["Ada"], body)
    assert response.status_code == 422 and response.json()["error"]
    assert server.state.db.finals() == {}


def test_duplicate_ids_count_once(server, three):
    assert choose(server, server.tokens["Ada"], [three[0], three[0]]).json()["submissions"] == [three[0]]


def test_finals_need_a_participant_token_and_json(server, three, comp):
    assert server.post("/api/final", json={"submissions": [three[0]]}).status_code == 401
    assert choose(server, teacher_of(comp), [three[0]]).status_code == 401
    response = server.post("/api/final", headers=auth(server.tokens["Ada"]), data={"submissions": str(three[0])})
    assert response.status_code == 415
    assert server.state.db.finals() == {}


@pytest.mark.parametrize("how", ["deadline", "closed", "revealed"])
def test_finals_are_refused_once_closed(make_server, comp, clock, good, how):
    server = make_server(deadline="2026-03-01T12:30:00Z")
    first = post(server, server.tokens["Ada"], good).json()["id"]
    if how == "deadline":
        clock.advance(hours=1)
    else:
        send(server, comp, "/api/reveal" if how == "revealed" else "/api/open",
             b'{"revealed": true}' if how == "revealed" else b'{"open": false}')
    response = choose(server, server.tokens["Ada"], [first])
    assert response.status_code == 403 and response.json()["error"]
    assert server.state.db.finals() == {}


def test_a_close_between_the_check_and_the_write_is_caught(server, three, comp, monkeypatch):
    """The teacher closes while the choice is on its way: the write's transaction refuses it."""
    real = server.state.db.set_finals

    def close_first(*args):
        server.state.db.set_settings({"closed": "1"})
        return real(*args)

    monkeypatch.setattr(server.state.db, "set_finals", close_first)
    assert choose(server, server.tokens["Ada"], [three[0]]).status_code == 403
    assert server.state.db.finals() == {}


def test_the_reveal_ranks_on_the_chosen_finals_else_the_best_public(server, three, comp):
    from kit.scoring.metrics import shown_scores

    rows = {row["id"]: row for row in server.state.db.submissions()}
    ada = server.tokens["Ada"]
    # Ada picks her two worst Public submissions; she ranks on the better Private of the two.
    choose(server, ada, [three[1], three[2]])
    send(server, comp, "/api/reveal", b'{"revealed": true}')
    board = {row["participant"]: row for row in server.get("/api/leaderboard").json()["rows"]}
    assert board["Ada"]["basis"] == "selected" and board["Bob"]["basis"] == "best Public"
    expected = min(shown_scores(rows[three[1]]["private"]), shown_scores(rows[three[2]]["private"]))
    assert board["Ada"]["private"] == expected
    assert board["Bob"]["private"] == shown_scores(rows[three[3]]["private"])
    assert board["Ada"]["entries"] == 3 and board["Ada"]["public_rank"] == 1
    page = server.get("/")
    assert "ranked on" in page.text and "selected" in page.text and "best Public" in page.text
    assert "Final standings" in page.text
    # Without a choice, Ada is back on her best Public submission (the first).
    send(server, comp, "/api/reveal", b'{"revealed": false}')
    send(server, comp, "/api/open", b'{"open": true}')
    choose(server, ada, [])
    send(server, comp, "/api/reveal", b'{"revealed": true}')
    board = {row["participant"]: row for row in server.get("/api/leaderboard").json()["rows"]}
    assert board["Ada"]["basis"] == "best Public"
    assert board["Ada"]["private"] == shown_scores(rows[three[0]]["private"])


def test_me_page_chooses_finals_without_javascript(server, three):
    ada = server.tokens["Ada"]
    page = server.post("/me", data={"token": ada})
    assert page.status_code == 200 and f'name="final" value="{three[0]}"' in page.text
    assert page.headers["cache-control"] == "no-store"
    saved = server.post("/me/final", data={"token": ada, "final": [str(three[0]), str(three[2])]})
    assert saved.status_code == 200 and "Final submission(s) chosen" in saved.text
    assert server.state.db.finals() == {"Ada": [three[0], three[2]]}
    # A browser under this site's no-referrer policy sends Origin: null with Sec-Fetch-Site.
    browser_like = {"Origin": "null", "Sec-Fetch-Site": "same-origin"}
    again = server.post("/me/final", data={"token": ada, "final": [str(three[1])]}, headers=browser_like)
    assert again.status_code == 200 and server.state.db.finals() == {"Ada": [three[1]]}
    server.post("/me/final", data={"token": ada, "final": [str(three[0]), str(three[2])]})
    too_many = server.post("/me/final", data={"token": ada, "final": [str(i) for i in three[:3]]})
    assert too_many.status_code == 422 and "at most 2" in too_many.text
    not_hers = server.post("/me/final", data={"token": ada, "final": [str(three[3])]})
    assert not_hers.status_code == 422
    assert server.state.db.finals() == {"Ada": [three[0], three[2]]}


@pytest.mark.parametrize("headers, data", [
    ({"Origin": "http://evil.example"}, "token"),
    ({"Origin": "null"}, "token"),
    ({"Sec-Fetch-Site": "cross-site"}, "token"),
    ({"Sec-Fetch-Site": "same-site"}, "token"),  # a sibling subdomain is another site here
    ({"Origin": "http://testserver.evil.example"}, "token"),
    ({"Cookie": "kit_token=TOKEN"}, "no token"),  # a cookie alone never chooses
    ({}, "wrong token"),
    ({}, "a letter"),
])
def test_me_final_form_refuses_forgery(server, three, headers, data):
    ada = server.tokens["Ada"]
    headers = {key: value.replace("TOKEN", ada) for key, value in headers.items()}
    form = {"token": ada, "final": [str(three[0])]}
    if data == "no token":
        form.pop("token")
    elif data == "wrong token":
        form["token"] = "x" * 32
    elif data == "a letter":
        form["final"] = ["1e3"]
    response = server.post("/me/final", data=form, headers=headers)
    assert response.status_code in (401, 403, 422)
    assert server.state.db.finals() == {}


# --- the teacher's page ------------------------------------------------------------------------


def sign_in(server, comp):
    response = server.post("/teacher", data={"token": teacher_of(comp)}, follow_redirects=False)
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/teacher" in cookie
    page = server.get("/teacher")
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    return page, csrf


def act(server, csrf, action, **fields):
    return server.post("/teacher", data={"csrf": csrf, "action": action, **fields})


def test_teacher_page_signs_in_and_runs_the_competition(make_server, comp, good):
    server = make_server(timezone_name="Europe/Paris")
    assert 'name="token"' in server.get("/teacher").text  # signed out: the sign-in form only
    page, csrf = sign_in(server, comp)
    assert page.headers["cache-control"] == "no-store" and "Ada" in page.text and "Bob" in page.text
    assert "Submissions are closed." in act(server, csrf, "close").text and state_of(server) == "closed"
    assert act(server, csrf, "open").status_code == 200 and state_of(server) == "open"
    assert act(server, csrf, "reveal").status_code == 200 and state_of(server) == "revealed"
    assert act(server, csrf, "open").status_code == 409
    assert act(server, csrf, "unreveal").status_code == 200 and state_of(server) == "closed"
    assert act(server, csrf, "open").status_code == 200
    done = act(server, csrf, "deadline", deadline="2026-03-01T12:00:00Z")
    assert "Deadline set to 2026-03-01 12:00 UTC" in done.text and state_of(server) == "closed"
    # The page shows the deadline in UTC, with its zone: sent back as it is, it stays the same.
    shown = server.get("/teacher").text.split('id="deadline" name="deadline" type="text" maxlength="64" '
                                              'placeholder="2026-06-30T23:59" value="')[1].split('"')[0]
    assert shown == "2026-03-01T12:00Z"
    assert "Deadline set to 2026-03-01 12:00 UTC" in act(server, csrf, "deadline", deadline=shown).text
    assert act(server, csrf, "deadline", deadline="next week").status_code == 422
    assert act(server, csrf, "deadline", deadline="").status_code == 200 and state_of(server) == "open"
    assert "Revoked Bob" in act(server, csrf, "revoke", name="Bob").text
    assert post(server, server.tokens["Bob"], good).status_code == 401
    assert act(server, csrf, "revoke", name="Nobody").status_code == 422
    assert act(server, csrf, "dance").status_code == 422
    signed_out = server.post("/teacher", data={"csrf": csrf, "action": "signout"}, follow_redirects=False)
    assert signed_out.status_code == 303
    assert act(server, csrf, "close").status_code == 401 and state_of(server) == "open"


@pytest.mark.parametrize("attack", ["no csrf", "wrong csrf", "other origin", "cross-site fetch", "json",
                                    "participant token", "forged cookie", "csrf of another session"])
def test_teacher_page_refuses_forgery(server, comp, attack):
    _, csrf = sign_in(server, comp)
    data, headers = {"csrf": csrf, "action": "close"}, {}
    if attack == "no csrf":
        data.pop("csrf")
    elif attack == "wrong csrf":
        data["csrf"] = "0" * 64
    elif attack == "other origin":
        headers["Origin"] = "http://evil.example"
    elif attack == "cross-site fetch":
        headers["Sec-Fetch-Site"] = "cross-site"
    elif attack == "participant token":
        server.cookies.clear()
        data = {"token": server.tokens["Ada"]}
    elif attack == "forged cookie":
        server.cookies.clear()
        server.cookies.set("kit_teacher", "a" * 43, path="/teacher")
    elif attack == "csrf of another session":
        server.cookies.clear()
        sign_in(server, comp)
    if attack == "json":
        response = server.post("/teacher", json=data, headers=headers)
    else:
        response = server.post("/teacher", data=data, headers=headers)
    assert response.status_code in (401, 403, 415)
    assert state_of(server) == "open"


def test_terminal_prints_one_line_per_scored_submission_and_no_polls(server, good, caplog):
    import logging

    from kit.server.security import PollFilter

    with caplog.at_level(logging.INFO, logger="uvicorn.error"):
        number = post(server, server.tokens["Ada"], good).json()["id"]
    lines = [r.getMessage() for r in caplog.records if r.name == "uvicorn.error"]
    assert len(lines) == 1 and lines[0].startswith(f"scored #{number} by Ada: Public 0.")
    assert len(lines[0].split("Public ")[1]) == 7  # 5 decimals

    def record(method, path, status):
        return logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
                                 ("127.0.0.1:5", method, path, "1.1", status), None)

    keep = PollFilter().filter
    assert not keep(record("GET", "/api/leaderboard", 200)) and not keep(record("GET", "/plots/bins.png?v=1", 200))
    assert not keep(record("GET", "/", 200))
    assert keep(record("POST", "/api/submissions", 201)) and keep(record("GET", "/api/leaderboard", 500))
    assert keep(record("GET", "/me", 200))


# --- teams -------------------------------------------------------------------------------------


def test_a_team_shares_one_allowance_one_set_of_finals_and_one_row(make_server, comp, tmp_path, clock):
    import json

    meta = comp / "competition.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "max_daily_submissions": 2}))
    server = make_server()
    server.state.db.join_team(["Ada", "Bob"], "Blue Whales")
    ada, bob = server.tokens["Ada"], server.tokens["Bob"]
    files = [perfect_submission(comp, tmp_path / f"t{i}.csv", noise=0.1 + i / 10, seed=i) for i in range(3)]
    first = post(server, ada, files[0]).json()
    assert first["remaining_today"] == 1
    second = post(server, bob, files[1]).json()
    assert second["remaining_today"] == 0
    refused = post(server, ada, files[2])
    assert refused.status_code == 429  # one allowance for the team
    board = server.get("/api/leaderboard").json()
    assert [(r["participant"], r["entries"]) for r in board["rows"]] == [("Blue Whales", 2)]
    # Each member sees the team's submissions, and the team chooses one set of finals.
    me = server.get("/api/me", headers=auth(bob)).json()
    assert me["team"] == "Blue Whales" and [s["by"] for s in me["submissions"]] == ["Ada", "Bob"]
    assert choose(server, bob, [first["id"]]).json()["submissions"] == [first["id"]]
    assert choose(server, ada, [second["id"]]).json()["submissions"] == [second["id"]]  # replaces Bob's choice
    assert [s["final"] for s in server.get("/api/me", headers=auth(bob)).json()["submissions"]] == [False, True]
    page = server.post("/me", data={"token": ada})
    assert 'id="team"' in page.text and "Blue Whales" in page.text
    send(server, comp, "/api/reveal", b'{"revealed": true}')
    (row,) = server.get("/api/leaderboard").json()["rows"]
    assert row["participant"] == "Blue Whales" and row["basis"] == "selected"
    # The exported pages rank as the live page: the team's row, on its chosen final submission.
    assert server.state.exporter.flush()
    ranking = (tmp_path / "lb" / "practice.md").read_text().split("## ")[1]
    assert "Blue Whales" in ranking and "| Ada" not in ranking
    assert f"{row['private']:.5f}" in ranking


# --- the classroom screen and the submission count ------------------------------------------------


def test_projector_view_shows_the_top_20_without_navigation(server, comp, tmp_path, clock):
    db = server.state.db
    for i in range(23):
        db.record({"participant": f"P{i:02d}", "time": clock.advance(minutes=1), "sha256": f"{i:02x}",
                   "public": 0.1 + i / 1000}, "score")
    page = server.get("/?view=projector")
    assert page.status_code == 200 and 'class="projector"' in page.text and 'data-top="20"' in page.text
    assert page.text.count("<tr") == 21  # the header and 20 rows
    assert "P19" in page.text and "P20" not in page.text and 'src="/plots' not in page.text
    assert server.get("/").text.count("<tr") == 24


def test_submit_page_says_which_submission_of_the_day_it_was(make_server, comp, good):
    import json

    meta = comp / "competition.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "max_daily_submissions": 5}))
    server = make_server()
    for number in (1, 2):
        page = server.post("/submit", data={"token": server.tokens["Ada"]},
                           files={"file": ("g.csv", good.read_bytes(), "text/csv")})
        assert page.status_code == 201 and f"Your submission {number} of 5 today" in page.text


# --- identical files from different participants ---------------------------------------------------


def noted(answer):
    """The identical-file notes among an upload answer's warnings (the scorer may add its own)."""
    return [w for w in answer.json()["warnings"] if "identical" in w]


def identical_lines(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "uvicorn.error" and "identical" in r.getMessage()]


def test_a_file_identical_to_another_participants_is_noted_in_the_answer_the_page_and_the_terminal(
        server, good, clock, caplog):
    import logging

    from kit.board.inbox import identical_note
    from kit.server.upload import IDENTICAL_TO_SENDER

    with caplog.at_level(logging.INFO, logger="uvicorn.error"):
        first = post(server, server.tokens["Ada"], good, name="mine.csv")
        again = post(server, server.tokens["Ada"], good, name="mine-again.csv")  # her own file: no note
        assert noted(first) == [] and noted(again) == [] and identical_lines(caplog) == []
        clock.advance(minutes=3)
        copied = post(server, server.tokens["Bob"], good, name="copy.csv")
    note = identical_note("copy.csv", "Bob", "Ada")
    assert note == "copy.csv (Bob) is identical to a submission of Ada seen earlier"
    assert noted(copied) == [IDENTICAL_TO_SENDER] and "Ada" not in copied.text  # no classmate named to Bob
    assert identical_lines(caplog) == [f"#{copied.json()['id']}: {note}"]  # the teacher's terminal names both
    clock.advance(minutes=1)
    page = server.post("/submit", data={"token": server.tokens["Bob"]},
                       files={"file": ("again.csv", good.read_bytes(), "text/csv")})
    assert page.status_code == 201 and IDENTICAL_TO_SENDER in page.text and "Ada" not in page.text


def test_identical_files_at_the_same_instant_blame_neither(server, good, caplog):
    import logging

    post(server, server.tokens["Bob"], good, name="b.csv")
    with caplog.at_level(logging.INFO, logger="uvicorn.error"):
        both = post(server, server.tokens["Ada"], good, name="a.csv")
    assert identical_lines(caplog) == [f"#{both.json()['id']}: identical files from Ada and Bob first seen together; "
                                       "neither is ranked ahead by time (a.csv)"]


def test_teammates_share_files_without_a_note_and_other_writers_count(make_server, comp, good, clock):
    import hashlib

    server = make_server()
    server.state.db.join_team(["Ada", "Bob"], "Blue Whales")
    assert noted(post(server, server.tokens["Ada"], good)) == []
    clock.advance(minutes=1)
    assert noted(post(server, server.tokens["Bob"], good)) == []
    # A file the inbox stored earlier (another writer of the one store) counts too.
    other = perfect_submission(comp, comp.parent / "cy.csv", noise=0.2, seed=9)
    server.state.db.record({"participant": "Cy", "time": clock.advance(minutes=1),
                            "sha256": hashlib.sha256(other.read_bytes()).hexdigest(), "public": 0.2}, "inbox")
    clock.advance(minutes=1)
    from kit.server.upload import IDENTICAL_TO_SENDER

    assert noted(post(server, server.tokens["Ada"], other, name="cy.csv")) == [IDENTICAL_TO_SENDER]
