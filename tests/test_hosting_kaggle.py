"""kit.hosting.kaggle and ``kit kaggle``: the real KaggleApi and kagglesdk, with Kaggle's servers
replaced at the HTTP layer by a recorder (no network), so the requests checked are the ones sent."""
import json
import math
import os
import tempfile
import zipfile
from pathlib import Path

import pytest
import requests

from builders import make_competition, perfect_submission
from conftest import kit_cli
from kit.cli import main
from kit.errors import SubmissionError, UserError
from kit.hosting import kaggle as kaggle_client

pytest.importorskip("kagglesdk")

SLUG = "specsim-class"
HOST_RPCS = ["CreateCompetition", "CreateCompetitionData", "CreateCompetitionSolution"] + [
    "CreateCompetitionPage"] * 4 + ["UpdateCompetitionSettings", "GetCompetitionSolutionStatus"]


class KaggleRecorder:
    """Kaggle's servers, as the real ``KaggleApi`` sees them through ``requests.Session.send``.

    Every RPC (``POST .../v1/<service>/<Method>``) is recorded with its JSON body and
    answered from ``answers`` (a payload, ``(status, payload)``, a list of those used in
    turn, or a function of the request's body; ``{}`` by default). Blob uploads get a token and an upload address; the bytes
    PUT there are kept, so ``files(token)`` gives back what KaggleApi uploaded.
    """

    def __init__(self):
        self.rpcs, self.blobs, self.answers = [], {}, {}
        self.put_status = 200

    def send(self, request):
        if request.method == "PUT":
            body = request.body.read() if hasattr(request.body, "read") else (request.body or b"")
            self.blobs[request.url.rsplit("/", 1)[-1]] = body
            return _response(request, self.put_status, {})
        method = request.url.rsplit("/", 1)[-1]
        body = json.loads(request.body or b"{}")
        self.rpcs.append((method, body))
        if method in ("StartBlobUpload", "StartSubmissionUpload"):
            token = f"blob-{len(self.rpcs)}"
            return _response(request, 200, {"token": token, "createUrl": f"https://upload.test/{token}"})
        if method == "IntrospectToken":
            return _response(request, 200, {"active": True, "username": "teacher"})
        answer = self.answers.get(method, {})
        if callable(answer):
            answer = answer(body)
        if isinstance(answer, list):
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        status, payload = answer if isinstance(answer, tuple) else (200, answer)
        return _response(request, status, payload)

    def methods(self):
        """The competition RPCs in the order sent (sign-in and blob uploads left out)."""
        return [m for m, _ in self.rpcs if m not in ("IntrospectToken", "StartBlobUpload", "StartSubmissionUpload")]

    def bodies(self, method):
        return [body for m, body in self.rpcs if m == method]


def _response(request, status, payload):
    response = requests.Response()
    response.status_code, response.request, response.url = status, request, request.url
    response.reason = "OK" if status < 400 else "Client Error"
    response.headers["Content-Type"] = "application/json"
    response._content = json.dumps(payload).encode()
    return response


@pytest.fixture
def kaggle(tmp_path, monkeypatch):
    """The recorder behind the real KaggleApi, signed in with a token, every file under tmp_path."""
    recorder = KaggleRecorder()
    monkeypatch.setattr(requests.Session, "send", lambda session, request, **kwargs: recorder.send(request))
    for key in [k for k in os.environ if k.startswith("KAGGLE_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("KAGGLE_API_TOKEN", "test-token")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "home" / ".kaggle"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # KaggleApi's upload state
    return recorder


def ready_status(public=9, private=21, **extra):
    return {"ready": True, "solutionInfo": {"fileName": "solution.csv", "totalRows": public + private,
                                            "publicRows": public, "privateRows": private}, **extra}


@pytest.fixture
def comp_dir(tmp_path):
    return make_competition(tmp_path / "data", n_pairs=30, seed=4)


def _set_meta(comp_dir, **fields):
    path = comp_dir / "competition.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))


# --- download, submit, leaderboard ------------------------------------------------------


class FakeDownloadApi:
    """Hands out a zip as competition_download_files would (the kit's part is the extraction)."""

    def __init__(self, files):
        self.files, self.calls = files, []

    def competition_download_files(self, competition, path=None, force=False, quiet=True, unzip=False):
        self.calls.append((competition, path))
        with zipfile.ZipFile(Path(path) / f"{competition}.zip", "w") as archive:
            for name, text in self.files.items():
                archive.writestr(name, text)


def test_download_unzips_into_the_folder(tmp_path):
    api = FakeDownloadApi({"test_pairs.csv": "id,spectrum_id_a,spectrum_id_b\n0,a,b\n"})
    folder = kaggle_client.download("specsim-practice", tmp_path / "dl", api=api)
    assert api.calls == [("specsim-practice", str(tmp_path / "dl"))]
    assert (folder / "test_pairs.csv").is_file() and not (folder / "specsim-practice.zip").exists()


@pytest.mark.parametrize("member", ["../evil.txt", "a/../../evil.txt"])
def test_download_refuses_archive_members_outside_the_folder(tmp_path, member):
    with pytest.raises(UserError, match="outside"):
        kaggle_client.download("c", tmp_path / "dl", api=FakeDownloadApi({member: "x"}))
    assert not (tmp_path / "evil.txt").exists()


def test_submit_uploads_then_creates_the_submission(tmp_path, comp_dir, kaggle, capsys):
    kaggle.answers["CreateSubmission"] = {"message": "Successfully submitted to specsim-class"}
    path = perfect_submission(comp_dir, tmp_path / "s.csv")
    assert main(["kaggle", "submit", str(path), "-m", "first try", "-c", SLUG, "--local-competition",
                 str(comp_dir)]) == 0
    assert [m for m, _ in kaggle.rpcs if m != "IntrospectToken"] == ["StartSubmissionUpload", "CreateSubmission"]
    start, create = kaggle.rpcs[-2][1], kaggle.rpcs[-1][1]
    assert start["competitionName"] == SLUG and start["fileName"] == "s.csv"
    assert create["submissionDescription"] == "first try" and kaggle.blobs[create["blobFileTokens"]] == path.read_bytes()
    out = capsys.readouterr().out
    assert "Successfully submitted to specsim-class" in out and "checked" in out.lower()


def test_a_failed_upload_is_not_reported_as_submitted(tmp_path, comp_dir, kaggle, capsys):
    kaggle.put_status = 403  # KaggleApi then answers with a message instead of raising
    path = perfect_submission(comp_dir, tmp_path / "s.csv")
    assert main(["kaggle", "submit", str(path), "-m", "m", "-c", SLUG, "--local-competition", str(comp_dir)]) == 2
    captured = capsys.readouterr()
    assert "upload" in captured.err and "Submitted" not in captured.out
    assert "CreateSubmission" not in kaggle.methods()


@pytest.mark.parametrize(
    "content, words",
    [
        ("id,prediction\n0,0.5\n", "wrong header"),
        ("id,similarity\n0,nan\n", "finite number"),
        ("id,similarity\n0,0.5\n0,0.4\n", "duplicate ids"),
        ("id,similarity\n1.0,0.5\n", "whole numbers"),
    ],
)
def test_invalid_files_are_never_sent(tmp_path, kaggle, content, words):
    path = tmp_path / "s.csv"
    path.write_text(content)
    with pytest.raises(SubmissionError, match=words):
        kaggle_client.submit(path, "m", "c")
    assert kaggle.rpcs == []


def test_submit_checks_ids_against_a_local_competition(tmp_path, comp_dir, kaggle):
    path = tmp_path / "s.csv"
    path.write_text("id,similarity\n0,0.5\n1,0.5\n")  # a valid shape, but 28 ids missing
    with pytest.raises(SubmissionError, match="missing ids"):
        kaggle_client.submit(path, "m", "c", local_competition=comp_dir)
    assert kaggle.rpcs == []


def _board(n, start=0):
    return [{"teamId": i, "teamName": f"team{i:02d}", "submissionDate": "2026-03-01T10:00:00.000Z",
             "score": f"0.{i + 1:05d}"} for i in range(start, start + n)]


def test_leaderboard_reads_every_page_and_prints_no_token(kaggle, capsys):
    kaggle.answers["GetLeaderboard"] = [{"submissions": _board(20), "nextPageToken": "p2"},
                                        {"submissions": _board(20, 20), "nextPageToken": "p3"},
                                        {"submissions": _board(5, 40)}]
    assert main(["kaggle", "leaderboard", SLUG]) == 0
    requests_sent = kaggle.bodies("GetLeaderboard")
    assert [r.get("pageToken", "") for r in requests_sent] == ["", "p2", "p3"]
    assert {r["competitionName"] for r in requests_sent} == {SLUG} and {r["pageSize"] for r in requests_sent} == {20}
    out = capsys.readouterr().out
    assert "Next Page Token" not in out and "p2" not in out
    assert "team44" in out and "45 teams" in out
    assert out.index("team00") < out.index("team19") < out.index("team20") < out.index("team44")


def test_leaderboard_scores_are_shown_as_kaggle_gives_them(kaggle, capsys):
    kaggle.answers["GetLeaderboard"] = {"submissions": [
        {"teamName": "ada", "score": "0.12345", "submissionDate": "2026-03-01T10:00:00Z"},
        {"teamName": "bob", "score": "0.1", "submissionDate": "2026-03-01T11:00:00Z"},
        {"teamName": "eve\x1b[31m\nforged 0.00001", "score": "0.2"}]}
    assert main(["kaggle", "leaderboard", SLUG]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].split()[2] == "0.12345" and lines[3].split()[2] == "0.1"  # no digits added
    assert "\x1b" not in "".join(lines) and len(lines) == 5 and "\\x1b" in lines[4]


def test_a_leaderboard_token_that_repeats_stops_the_paging(kaggle):
    kaggle.answers["GetLeaderboard"] = [{"submissions": _board(2), "nextPageToken": "same"}]
    rows = kaggle_client.leaderboard(SLUG)
    assert len(kaggle.bodies("GetLeaderboard")) == 2 and len(rows) == 4


@pytest.mark.parametrize("status, words", [(403, "accept the competition rules"), (404, "no competition"),
                                           (500, "connection")])
def test_http_errors_become_one_line(kaggle, status, words):
    kaggle.answers["GetLeaderboard"] = (status, {"code": status, "message": "refused\nsecond line"})
    with pytest.raises(UserError, match=words) as info:
        kaggle_client.leaderboard("c")
    assert "\n" not in str(info.value)


def test_credential_sources(tmp_path):
    assert kaggle_client.credential_source({}, home=tmp_path) is None
    assert kaggle_client.credential_source({"KAGGLE_USERNAME": "u", "KAGGLE_KEY": "k"}, home=tmp_path)
    (tmp_path / ".kaggle").mkdir()
    (tmp_path / ".kaggle" / "kaggle.json").write_text('{"username": "u", "key": "k"}')
    assert kaggle_client.credential_source({}, home=tmp_path).endswith("kaggle.json")


def test_cli_refuses_a_bad_file_before_connecting(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(kaggle_client, "connect", lambda: pytest.fail("must not connect"))
    path = tmp_path / "s.csv"
    path.write_text("id;similarity\n0;0.5\n")
    assert main(["kaggle", "submit", str(path), "-m", "m", "-c", "c"]) == 2
    assert "';' as the separator" in capsys.readouterr().err


def _no_credentials(home):
    """Environment overrides for a run with no Kaggle credentials anywhere: no KAGGLE_*, an empty home."""
    return {**{key: None for key in os.environ if key.startswith("KAGGLE_")},
            "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}


@pytest.mark.parametrize("action", [["leaderboard", "some-competition"], ["download", "some-competition"]])
def test_without_credentials_one_line_and_exit_2(tmp_path, action):
    done = kit_cli("kaggle", *action, cwd=tmp_path, env=_no_credentials(tmp_path))
    assert not (tmp_path / "data").exists()
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "KAGGLE_API_TOKEN" in lines[0] and "kaggle.json" in lines[0]
    assert done.stdout == "" and not (tmp_path / ".config" / "kaggle").exists()


# --- kit kaggle host ---------------------------------------------------------------------


def _host(comp_dir, *extra):
    return main(["kaggle", "host", "--competition", str(comp_dir), "--slug", SLUG, *extra])


def test_host_sends_every_call_in_order_and_never_launches(comp_dir, kaggle, capsys):
    _set_meta(comp_dir, deadline="2027-01-31T23:59:00+02:00")
    kaggle.answers["GetCompetitionSolutionStatus"] = ready_status()
    assert _host(comp_dir, "--title", "Spectral similarity 2026") == 0
    assert kaggle.methods() == HOST_RPCS
    (create,) = kaggle.bodies("CreateCompetition")
    assert create["slug"] == SLUG and create["title"] == "Spectral similarity 2026"
    assert create["privacy"] == "LIMITED"  # the default, as in the guide
    (data,) = kaggle.bodies("CreateCompetitionData")
    uploaded = {f["name"]: kaggle.blobs[f["token"]] for f in data["files"]}
    public = sorted(p.name for p in comp_dir.iterdir() if p.is_file())
    assert sorted(uploaded) == public and all(uploaded[n] == (comp_dir / n).read_bytes() for n in public)
    (solution,) = kaggle.bodies("CreateCompetitionSolution")
    assert kaggle.blobs[solution["blobToken"]] == (comp_dir / "private" / "solution.csv").read_bytes()
    pages = {b["page"]["name"]: b["page"] for b in kaggle.bodies("CreateCompetitionPage")}
    assert list(pages) == ["description", "evaluation", "data-description", "rules"]
    assert all(p["isPublished"] and p["mimeType"] == "text/markdown" for p in pages.values())
    assert "MS2DeepScore" in pages["description"]["content"]
    (settings,) = kaggle.bodies("UpdateCompetitionSettings")
    assert settings["settings"]["deadline"] == "2027-01-31T21:59:00.000Z"  # UTC, one Z
    assert sorted(settings["updateMask"].split(",")) == ["briefDescription", "deadline",
                                                         "publicLeaderboardDisclaimerMessage"]
    out = capsys.readouterr().out
    lines = out.splitlines()
    steps = lines[lines.index(f"Still to do on https://www.kaggle.com/competitions/{SLUG}/host, in this order:") + 1:][:4]
    assert [step[:5] for step in steps] == ["  1. ", "  2. ", "  3. ", "  4. "]
    assert "Kaggle has processed the solution: 9 Public and 21 Private rows" in out
    solution = [line.split(",") for line in (comp_dir / "private" / "solution.csv").read_text().splitlines()[1:]]
    public = [float(truth) for _, truth, usage in solution if usage == "Public"]
    sample_rmse = math.sqrt(sum((0.5 - t) ** 2 for t in public) / len(public))  # the sample predicts 0.5
    assert ["Root Mean Squared Error" in steps[0], "daily submissions: 5" in steps[1],
            f"sample_submission.csv: its Public score must be {sample_rmse:.5f}" in steps[2],
            "--launch-only" in steps[3]] == [True] * 4
    assert "not launched" in out and "LaunchCompetition" not in kaggle.methods()


@pytest.mark.parametrize("deadline, sent", [
    ("2027-01-31", "2027-01-31T23:59:00.000Z"),
    ("2027-01-31T23:59Z", "2027-01-31T23:59:00.000Z"),
    ("2027-02-01T01:29:00+01:30", "2027-01-31T23:59:00.000Z"),
    ("2027-01-31T18:59-0500", "2027-01-31T23:59:00.000Z"),
])
def test_the_deadline_goes_out_as_rfc3339_utc(comp_dir, kaggle, deadline, sent):
    _set_meta(comp_dir, deadline=deadline)
    kaggle.answers["GetCompetitionSolutionStatus"] = ready_status()
    kaggle_client.host(comp_dir, SLUG, echo=lambda line: None)
    (settings,) = kaggle.bodies("UpdateCompetitionSettings")
    assert settings["settings"]["deadline"] == sent


@pytest.mark.parametrize("deadline", ["2027-31-01", "tomorrow", "2027-01-31T23:59+25:00", 20270131, ["2027"],
                                      "9999-12-31T23:59-02:00", "2027-01-31T23:59\x1b[2J"])
def test_a_bad_deadline_is_one_line_before_connecting(comp_dir, monkeypatch, capsys, deadline):
    _set_meta(comp_dir, deadline=deadline)
    monkeypatch.setattr(kaggle_client, "connect", lambda: pytest.fail("must not connect"))
    assert _host(comp_dir) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "competition.json deadline" in err[0] and "\x1b" not in err[0]


def test_host_waits_until_the_solution_is_ready(comp_dir, kaggle):
    kaggle.answers["GetCompetitionSolutionStatus"] = [{"ready": False}, {"ready": False}, ready_status()]
    naps = []
    kaggle_client.host(comp_dir, SLUG, echo=lambda line: None, sleep=naps.append)
    assert kaggle.methods().count("GetCompetitionSolutionStatus") == 3 and len(naps) == 2


def test_host_stops_waiting_and_says_how_to_check_again(comp_dir, kaggle):
    kaggle.answers["GetCompetitionSolutionStatus"] = {"ready": False}
    lines = []
    kaggle_client.host(comp_dir, SLUG, echo=lines.append, sleep=lambda s: None, wait_s=30)
    assert kaggle.methods().count("GetCompetitionSolutionStatus") == 4
    assert any("still processing" in line and "--launch-only" in line for line in lines)


def test_a_solution_kaggle_cannot_read_is_one_line(comp_dir, kaggle, capsys):
    kaggle.answers["GetCompetitionSolutionStatus"] = {"setupError": "Usage column\nhas bad values"}
    assert _host(comp_dir) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "could not process the solution" in err[0] and "Usage column" in err[0]


def test_host_reports_row_counts_kaggle_disagrees_with(comp_dir, kaggle):
    kaggle.answers["GetCompetitionSolutionStatus"] = ready_status(public=30, private=0)
    lines = []
    kaggle_client.host(comp_dir, SLUG, echo=lines.append)
    assert any("0 Private rows, expected 21" in line for line in lines)


def test_existing_pages_are_updated(comp_dir, kaggle):
    kaggle.answers["CreateCompetitionPage"] = (409, {"code": 409, "message": "page exists"})
    kaggle.answers["GetCompetitionSolutionStatus"] = ready_status()
    kaggle_client.host(comp_dir, SLUG, echo=lambda line: None)
    updates = kaggle.bodies("UpdateCompetitionPage")
    assert [u["pageName"] for u in updates] == ["description", "evaluation", "data-description", "rules"]
    assert all(u["page"]["isPublished"] for u in updates)


def test_a_refused_data_page_becomes_a_step_by_hand(comp_dir, kaggle, capsys):
    kaggle.answers["CreateCompetitionPage"] = lambda body: (
        (400, {"code": 400, "message": "unknown page"}) if body["page"]["name"] == "data-description" else {})
    kaggle.answers["GetCompetitionSolutionStatus"] = ready_status()
    assert _host(comp_dir) == 0
    out = capsys.readouterr().out
    assert "did not take the page name 'data-description'" in out and "--print-page data" in out
    assert kaggle.methods() == HOST_RPCS  # the rules page and the settings still went out


def test_print_page_prints_markdown_and_sends_nothing(comp_dir, monkeypatch, capsys):
    monkeypatch.setattr(kaggle_client, "connect", lambda: pytest.fail("must not connect"))
    assert _host(comp_dir, "--print-page", "data") == 0
    assert capsys.readouterr().out.startswith("# Data")


def test_dry_run_prints_every_call_and_touches_nothing(comp_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(kaggle_client, "connect", lambda: pytest.fail("a dry run must not connect"))
    monkeypatch.chdir(tmp_path)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    assert _host(comp_dir, "--dry-run") == 0
    out = capsys.readouterr().out
    calls = [line for line in out.splitlines() if line.startswith("api.")]
    assert [c.split("(")[0] for c in calls] == [
        "api.competition_initialize", "api.competition_create_new", "api.competition_data_update",
        "api.competition_create_solution"] + ["api.competition_create_page"] * 4 + [
        "api.competition_update_settings", "api.competition_get_solution_status"]
    assert '"privacy": "LIMITED"' in out and "launch" not in " ".join(calls)
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("rpc, status, words", [
    ("CreateCompetition", 409, "exists already"),
    ("CreateCompetitionData", 500, "done: initialize, create_new"),
    ("CreateCompetitionSolution", 401, "check your credentials"),
    ("CreateCompetitionPage", 400, "done: initialize, create_new, data_update, create_solution"),
])
def test_kaggle_refusing_a_step_is_one_line(comp_dir, kaggle, capsys, rpc, status, words):
    kaggle.answers[rpc] = (status, {"code": status, "message": "refused"})
    assert _host(comp_dir) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kit kaggle: error:") and words in err[0]
    assert kaggle.methods()[-1] == rpc and "LaunchCompetition" not in kaggle.methods()


def test_an_older_kaggle_package_is_named(comp_dir):
    class OldApi:  # kaggle 1.7: no competition hosting
        pass

    with pytest.raises(UserError, match="kaggle 2.2"):
        kaggle_client.host(comp_dir, SLUG, api=OldApi(), echo=lambda line: None)


@pytest.mark.parametrize("argv, words", [
    (["--slug", "Bad_Slug"], "lowercase letters"),
    (["--slug", "ab"], "3 to 50"),
    (["--slug=-leading"], "lowercase letters"),
    (["--slug", "x" * 51], "3 to 50"),
    (["--slug", "ok-slug\n--privacy"], "lowercase letters"),
    (["--slug", "ok-slug", "--title", "   "], "1 to 100 characters"),
    (["--slug", "ok-slug", "--launch"], "--launch-only"),
    (["--slug", "bad\nslug", "--launch"], "lowercase letters"),
    (["--slug", "bad\nslug", "--launch-only"], "lowercase letters"),
    (["--slug", "ok-slug", "--wait", "-1"], "--wait must be an integer >= 0, found -1"),
    (["--slug", "ok-slug", "--launch-only", "--competition", "nowhere"], "nowhere"),
])
def test_bad_host_options_are_one_line_before_connecting(comp_dir, monkeypatch, capsys, argv, words):
    monkeypatch.setattr(kaggle_client, "connect", lambda: pytest.fail("must not connect"))
    assert main(["kaggle", "host", "--competition", str(comp_dir), *argv]
                if "--competition" not in argv else ["kaggle", "host", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]


def test_host_needs_the_answers(comp_dir, tmp_path, monkeypatch, capsys):
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in comp_dir.iterdir():
        if path.is_file():
            (copy / path.name).write_bytes(path.read_bytes())
    monkeypatch.setattr(kaggle_client, "connect", lambda: pytest.fail("must not connect"))
    assert main(["kaggle", "host", "--competition", str(copy), "--slug", SLUG]) == 2
    assert "private" in capsys.readouterr().err


def test_host_without_credentials_one_line_and_exit_2(tmp_path, comp_dir):
    done = kit_cli("kaggle", "host", "--competition", comp_dir, "--slug", SLUG, cwd=tmp_path,
                   env=_no_credentials(tmp_path))
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "KAGGLE_API_TOKEN" in lines[0]


def test_host_and_export_warn_about_restrictive_licences(comp_dir, tmp_path, monkeypatch, capsys):
    _set_meta(comp_dir, library={"licenses": {"CC BY": 40, "CC BY-NC-ND": 3, "cc-by-nc 4.0": 2}})
    monkeypatch.setattr(kaggle_client, "connect", lambda: pytest.fail("must not connect"))
    assert _host(comp_dir, "--dry-run") == 0
    assert main(["export", "codabench", "--competition", str(comp_dir), "--out", str(tmp_path / "b.zip"),
                 "--start", "2026-01-05", "--end", "2026-02-05"]) == 0
    warnings = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2 and warnings[0] == warnings[1]
    assert "3 no derivatives" in warnings[0] and "5 non-commercial" in warnings[0]
    assert "--exclude-licence CC-BY-NC-ND" in warnings[0]


def test_no_licence_warning_for_open_licences(comp_dir, monkeypatch, capsys):
    _set_meta(comp_dir, library={"licenses": {"CC BY": 40, "CC0": 2, "dl-de/by-2-0": 1, "unknown": 4}})
    monkeypatch.setattr(kaggle_client, "connect", lambda: pytest.fail("must not connect"))
    assert _host(comp_dir, "--dry-run") == 0
    assert "warning:" not in capsys.readouterr().out


# --- kit kaggle host --launch-only -----------------------------------------------------------

PAGES_PUBLISHED = {"pages": [{"name": name, "isPublished": True}
                             for name in ("description", "evaluation", "data-description", "rules")]}


def _ready_to_launch(kaggle, **status):
    kaggle.answers.update({
        "GetCompetitionSolutionStatus": ready_status(**status),
        "ListCompetitionPages": PAGES_PUBLISHED,
        "GetCompetitionSettings": {"deadline": "2999-01-31T23:59:00Z"},
    })


def test_launch_only_checks_then_launches(comp_dir, kaggle, capsys):
    _ready_to_launch(kaggle)
    assert main(["kaggle", "host", "--slug", SLUG, "--launch-only", "--competition", str(comp_dir)]) == 0
    assert kaggle.methods() == ["GetCompetitionSolutionStatus", "ListCompetitionPages", "GetCompetitionSettings",
                                "LaunchCompetition"]
    assert kaggle.bodies("LaunchCompetition") == [{"competitionName": SLUG}]
    assert "Launched" in capsys.readouterr().out


@pytest.mark.parametrize("change, words", [
    ({"GetCompetitionSolutionStatus": {"ready": False}}, "not finished processing"),
    ({"GetCompetitionSolutionStatus": {"setupError": "bad Usage"}}, "bad Usage"),
    ({"GetCompetitionSolutionStatus": ready_status(requiredMetricColumns=[{"name": "Expected"}],
                                                   columnMapping={"Predicted": "similarity"})},
     "metric columns not mapped: Expected"),
    ({"GetCompetitionSolutionStatus": ready_status(public=10, private=20)}, "10 Public rows, expected 9"),
    ({"ListCompetitionPages": {"pages": [{"name": "description", "isPublished": True}]}},
     "pages not published: evaluation, rules"),
    ({"ListCompetitionPages": {"pages": [{"name": n} for n in ("description", "evaluation", "rules")]}},
     "pages not published: description, evaluation, rules"),
    ({"GetCompetitionSettings": {"deadline": "2020-01-31T23:59:00Z"}}, "the deadline 2020-01-31 23:59 UTC has passed"),
    ({"LaunchCompetition": (400, {"code": 400, "message": "set an evaluation metric first"})},
     "set an evaluation metric first"),
])
def test_launch_only_refuses_what_is_not_ready(comp_dir, kaggle, capsys, change, words):
    _ready_to_launch(kaggle)
    kaggle.answers.update(change)
    assert main(["kaggle", "host", "--slug", SLUG, "--launch-only", "--competition", str(comp_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]
    if "LaunchCompetition" not in change:
        assert "LaunchCompetition" not in kaggle.methods()


def test_launch_only_without_a_local_copy_needs_both_usages(kaggle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no data/practice here: only Kaggle's own counts are checked
    _ready_to_launch(kaggle, public=0)
    assert main(["kaggle", "host", "--slug", SLUG, "--launch-only"]) == 2
    assert "0 Public rows, expected some" in capsys.readouterr().err


def test_launch_only_launches_without_a_deadline(kaggle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _ready_to_launch(kaggle)
    kaggle.answers["GetCompetitionSettings"] = {}
    kaggle_client.launch(SLUG, echo=lambda line: None)
    assert kaggle.methods()[-1] == "LaunchCompetition"


def test_the_recorder_answers_what_kaggle_api_expects():
    """The fields the recorder answers with exist in the installed kagglesdk (a rename fails here)."""
    from kagglesdk.competitions.types.competition_api_service import (
        ApiCompetitionSolutionStatus,
        ApiGetLeaderboardResponse,
        ApiListCompetitionPagesResponse,
    )

    status = ApiCompetitionSolutionStatus.from_dict(ready_status(requiredMetricColumns=[{"name": "Expected"}]))
    assert status.ready and status.solution_info.private_rows == 21 and status.required_metric_columns[0].name
    board = ApiGetLeaderboardResponse.from_dict({"submissions": _board(1), "nextPageToken": "t"})
    assert board.next_page_token == "t" and board.submissions[0].score == "0.00001"
    assert ApiListCompetitionPagesResponse.from_dict(PAGES_PUBLISHED).pages[3].name == "rules"


def test_launch_only_dry_run_lists_the_calls_and_sends_nothing(monkeypatch, capsys):
    monkeypatch.setattr(kaggle_client, "connect", lambda: pytest.fail("a dry run must not connect"))
    assert main(["kaggle", "host", "--slug", SLUG, "--launch-only", "--dry-run"]) == 0
    calls = [line.split("(")[0] for line in capsys.readouterr().out.splitlines() if line.startswith("api.")]
    assert calls == ["api.competition_get_solution_status", "api.competition_list_pages",
                     "api.competition_get_settings", "api.competition_launch"]


def test_launch_only_and_print_page_exclude_each_other(capsys):
    with pytest.raises(SystemExit) as info:
        main(["kaggle", "host", "--slug", SLUG, "--launch-only", "--print-page", "data"])
    assert info.value.code == 2 and "not allowed with" in capsys.readouterr().err
