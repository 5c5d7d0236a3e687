"""The server's routes as FastAPI documents and guards them: schemas in /openapi.json, bearer tokens, answer shapes."""
import pytest

pytest.importorskip("fastapi")

from server_builders import START  # noqa: E402
from test_server import auth, clock, comp, good, make_server, post, server, teacher_of  # noqa: E402,F401

TEACHER_ROUTES = [("/api/reveal", {"revealed": True}), ("/api/open", {"open": False}),
                  ("/api/deadline", {"deadline": None})]


def schema_of(document, reference):
    return document["components"]["schemas"][reference.rsplit("/", 1)[-1]]


def test_openapi_shows_the_request_and_answer_schemas(server):
    document = server.get("/openapi.json").json()
    paths = document["paths"]
    for path, model, key, kind in [("/api/reveal", "RevealRequest", "revealed", "boolean"),
                                   ("/api/open", "OpenRequest", "open", "boolean"),
                                   ("/api/final", "FinalRequest", "submissions", "array")]:
        body = paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body["title"] == model and body["required"] == [key] and body["additionalProperties"] is False
        assert body["properties"][key]["type"] == kind
    answers = {("/api/leaderboard", "get"): "Leaderboard", ("/api/me", "get"): "History",
               ("/api/info", "get"): "Info", ("/api/submissions", "post"): "SubmissionResult",
               ("/api/reveal", "post"): "RevealAnswer", ("/api/final", "post"): "FinalAnswer"}
    for (path, method), model in answers.items():
        operation = paths[path][method]
        ok = operation["responses"]["201" if method == "post" and path == "/api/submissions" else "200"]
        assert ok["content"]["application/json"]["schema"]["$ref"].endswith(f"/{model}")
        refusal = operation["responses"].get("401") or operation["responses"]["422"]
        assert refusal["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorAnswer")
    rows = schema_of(document, schema_of(document, "Leaderboard")["properties"]["rows"]["items"]["$ref"])
    assert {"rank", "participant", "public", "private", "basis"} <= set(rows["properties"])
    assert "HTTPBearer" in document["components"]["securitySchemes"]
    assert paths["/api/me"]["get"]["security"] == [{"HTTPBearer": []}]
    assert not any(path.startswith(("/submit", "/me", "/teacher", "/docs")) for path in paths)


def test_docs_page_is_served_from_the_local_assets(server):
    page = server.get("/docs")
    assert page.status_code == 200 and "/docs/assets/swagger-ui-bundle.js" in page.text
    assert server.get("/docs/assets/swagger-ui-bundle.js").status_code == 200


@pytest.mark.parametrize("header", ["bearer {t}", "BEARER {t}", "Bearer  {t}", "Bearer {t}  ", " Bearer {t}"])
def test_the_bearer_scheme_is_read_as_before(server, header):
    response = server.get("/api/me", headers={"Authorization": header.format(t=server.tokens["Ada"])})
    assert response.status_code == 200 and response.json()["participant"] == "Ada"


@pytest.mark.parametrize("header, message", [
    (None, "missing token"), ("", "missing token"), ("   ", "missing token"), ("Bearer", "malformed"),
    ("Bearer ", "malformed"), ("Basic QWRhOnB3", "malformed"), ("Token {t}", "malformed"), ("{t}", "malformed"),
    ("Digest username=x", "malformed"), ("Bearer {t} {t}", "unknown token"), ("Bearer {t}x", "unknown token"),
    ("Bearer " + "a" * 257, "unknown token"), ("Bearer t\u00e9st", "unknown token"),
])
@pytest.mark.parametrize("path", ["/api/me", "/api/final", "/api/submissions"])
def test_a_missing_or_odd_participant_token_is_401_never_403(server, good, header, message, path):
    headers = {} if header is None else {"Authorization": header.format(t=server.tokens["Ada"]).encode("utf-8")}
    if path == "/api/me":
        response = server.get(path, headers=headers)
    elif path == "/api/final":
        response = server.post(path, headers=headers, json={"submissions": []})
    else:
        response = server.post(path, headers=headers, files={"file": ("a.csv", good.read_bytes(), "text/csv")})
    assert response.status_code == 401 and message in response.json()["error"]
    assert set(response.json()) == {"error"}
    assert server.state.db.submissions() == [] and server.state.db.finals() == {}


@pytest.mark.parametrize("path, body", TEACHER_ROUTES)
@pytest.mark.parametrize("header, status, message", [
    (None, 401, "missing token"), ("Basic dGVhY2hlcjpwYXNz", 401, "malformed"), ("Bearer", 401, "malformed"),
    ("Bearer nobody", 401, "unknown token"), ("Bearer {ada}", 403, "not a participant's"),
    ("Bearer {teacher}x", 401, "unknown token"), ("Bearer " + "t" * 300, 401, "unknown token"),
])
def test_teacher_routes_admit_only_the_teacher_token(server, comp, path, body, header, status, message):
    headers = {} if header is None else {
        "Authorization": header.format(ada=server.tokens["Ada"], teacher=teacher_of(comp))}
    response = server.post(path, headers=headers, json=body)
    assert response.status_code == status and message in response.json()["error"]
    assert not set(server.state.db.settings()) & {"closed", "deadline", "revealed"}
    assert server.post(path, headers=auth(teacher_of(comp)), json=body).status_code == 200


def test_a_revoked_token_is_401_on_every_participant_route(server, good):
    server.state.db.revoke_participant("Ada", START)
    for response in (server.get("/api/me", headers=auth(server.tokens["Ada"])),
                     server.post("/api/final", headers=auth(server.tokens["Ada"]), json={"submissions": []}),
                     post(server, server.tokens["Ada"], good)):
        assert response.status_code == 401 and "revoked" in response.json()["error"]


def test_answers_leave_out_what_is_not_set(server, good, comp):
    assert post(server, server.tokens["Ada"], good).status_code == 201
    (row,) = server.get("/api/leaderboard").json()["rows"]
    assert not {"private", "public_rank", "basis"} & set(row)
    (mine,) = server.get("/api/me", headers=auth(server.tokens["Ada"])).json()["submissions"]
    assert not {"private", "error"} & set(mine) and mine["final"] is False
    server.post("/api/reveal", headers=auth(teacher_of(comp)), json={"revealed": True})
    (row,) = server.get("/api/leaderboard").json()["rows"]
    assert {"private", "public_rank", "basis"} <= set(row)
    (mine,) = server.get("/api/me", headers=auth(server.tokens["Ada"])).json()["submissions"]
    assert "private" in mine and "error" not in mine


@pytest.mark.parametrize("body", [
    b'{"submissions": [1.5]}', b'{"submissions": ["1"]}', b'{"submissions": [true]}', b'{"submissions": [false]}',
    b'{"submissions": 1}', b'{"submissions": {"1": 1}}', b'{"submissions": [1], "extra": null}',
    b'{"Submissions": [1]}', b'{"submissions": [4611686018427387904]}', b'{"submissions": [1e2]}',
    b'{"submissions": [-0]}', b'{"submissions": [Infinity]}', b'{"submissions": "[1]"}', b'[{"submissions": [1]}]',
])
def test_final_bodies_are_checked_strictly(server, body):
    response = server.post("/api/final", headers={**auth(server.tokens["Ada"]), "Content-Type": "application/json"},
                           content=body)
    assert response.status_code == 422 and response.json()["error"].startswith("expected the JSON object")
    assert server.state.db.finals() == {}


@pytest.mark.parametrize("body", [
    b'{"deadline": "2026-03-01T12:00:00Z\\n"}', b'{"deadline": "\\u00e92026-03-01"}', b'{"deadline": true}',
    b'{"deadline": 0}', b'{"deadline": {"at": "2026-03-01"}}', b'{"deadline": ["2026-03-01"]}',
    b'{"deadline": "' + b"9" * 65 + b'"}', b'{"deadline": null, "revealed": true}',
])
def test_deadline_bodies_are_checked_strictly(server, comp, body):
    response = server.post("/api/deadline", headers={**auth(teacher_of(comp)), "Content-Type": "application/json"},
                           content=body)
    assert response.status_code == 422 and "expected" in response.json()["error"]
    assert "deadline" not in server.state.db.settings()


@pytest.mark.parametrize("content_type", [
    None, "text/plain", "text/json", "application/json-patch+json", "application/x-www-form-urlencoded",
    "application/json; charset=latin-1", "application/json; charset=utf-8; boundary=x", "multipart/form-data",
])
def test_final_takes_only_json(server, content_type):
    headers = {**auth(server.tokens["Ada"]), **({} if content_type is None else {"Content-Type": content_type})}
    response = server.post("/api/final", headers=headers, content=b'{"submissions": []}')
    assert response.status_code == 415 and "application/json" in response.json()["error"]


@pytest.mark.parametrize("content_type", [
    "APPLICATION/JSON", "application/json; charset=UTF-8", "application/json;charset=utf8"])
def test_final_takes_json_however_its_type_is_spelled(server, content_type):
    response = server.post("/api/final", headers={**auth(server.tokens["Ada"]), "Content-Type": content_type},
                           content=b'{"submissions": []}')
    assert response.status_code == 200 and response.json() == {"participant": "Ada", "submissions": []}
