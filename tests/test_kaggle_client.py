"""kit.kaggle_client and ``kit kaggle``: calls match kaggle 2.x, checked locally first, no network."""
import ast
import importlib.util
import inspect
import json
import os
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from builders import make_competition, perfect_submission
from conftest import kit_cli

from kit import kaggle_client
from kit.cli import main
from kit.errors import SubmissionError, UserError


class FakeKaggleApi:
    """Records calls; method signatures copied from kaggle 2.2.5's KaggleApi."""

    def __init__(self, files=None, fail=None):
        self.calls = []
        self.files = files or {"test_pairs.csv": "id,spectrum_id_a,spectrum_id_b\n0,a,b\n"}
        self.fail = fail

    def _record(self, name, args, kwargs):
        self.calls.append((name, args, kwargs))
        if self.fail is not None:
            raise self.fail

    def competition_download_files(self, competition, path=None, force=False, quiet=True, unzip=False):
        self._record("competition_download_files", (competition,), {"path": path})
        with zipfile.ZipFile(Path(path) / f"{competition}.zip", "w") as archive:
            for name, text in self.files.items():
                archive.writestr(name, text)

    def competition_submit(self, file_name, message, competition, quiet=False, sandbox=False):
        self._record("competition_submit", (file_name, message, competition), {})
        return SimpleNamespace(message="Successfully submitted")

    def competition_leaderboard_view(self, competition, page_size=20, page_token=None):
        self._record("competition_leaderboard_view", (competition,), {})
        return [
            SimpleNamespace(team_name="ada", score="0.12345", submission_date="2025-03-01 10:00:00"),
            SimpleNamespace(team_name="grace", score="0.13000", submission_date="2025-03-02 11:00:00"),
        ]


class HttpError(OSError):
    def __init__(self, status):
        super().__init__(f"{status} Client Error")
        self.response = SimpleNamespace(status_code=status)


@pytest.fixture
def comp_dir(tmp_path):
    return make_competition(tmp_path / "data", n_pairs=30, seed=4)


@pytest.fixture
def fake(monkeypatch):
    api = FakeKaggleApi()
    monkeypatch.setattr(kaggle_client, "connect", lambda: api)
    return api


def _installed_signature(method):
    """Parameter names of a KaggleApi method, read from the installed source without importing it
    (importing kaggle authenticates and writes a config folder)."""
    spec = importlib.util.find_spec("kaggle")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("kaggle is not installed")
    source = Path(list(spec.submodule_search_locations)[0]) / "api" / "kaggle_api_extended.py"
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef) and node.name == method:
            return [a.arg for a in node.args.args]
    pytest.fail(f"KaggleApi.{method} not found in {source}")


@pytest.mark.parametrize("method", ["competition_download_files", "competition_submit", "competition_leaderboard_view"])
def test_fake_matches_the_installed_kaggle_api(method):
    fake = list(inspect.signature(getattr(FakeKaggleApi, method)).parameters)
    assert _installed_signature(method)[: len(fake)] == fake


def test_download_calls_the_api_and_unzips(tmp_path, fake):
    folder = kaggle_client.download("specsim-practice", tmp_path / "dl")
    assert fake.calls == [("competition_download_files", ("specsim-practice",), {"path": str(tmp_path / "dl")})]
    assert (folder / "test_pairs.csv").is_file() and not (folder / "specsim-practice.zip").exists()


def test_download_refuses_archive_members_outside_the_folder(tmp_path, monkeypatch):
    api = FakeKaggleApi(files={"../evil.txt": "x"})
    with pytest.raises(UserError, match="outside"):
        kaggle_client.download("c", tmp_path / "dl", api=api)
    assert not (tmp_path / "evil.txt").exists()


def test_submit_checks_then_calls_the_api(tmp_path, comp_dir, fake):
    path = perfect_submission(comp_dir, tmp_path / "s.csv")
    submission, response = kaggle_client.submit(path, "first try", "specsim-practice", local_competition=comp_dir)
    assert fake.calls == [("competition_submit", (str(path), "first try", "specsim-practice"), {})]
    assert submission.rows == 30 and response.message == "Successfully submitted"


@pytest.mark.parametrize(
    "content, words",
    [
        ("id,prediction\n0,0.5\n", "wrong header"),
        ("id,similarity\n0,nan\n", "finite number"),
        ("id,similarity\n0,0.5\n0,0.4\n", "duplicate ids"),
        ("id,similarity\n1.0,0.5\n", "whole numbers"),
    ],
)
def test_invalid_files_are_never_sent(tmp_path, fake, content, words):
    path = tmp_path / "s.csv"
    path.write_text(content)
    with pytest.raises(SubmissionError, match=words):
        kaggle_client.submit(path, "m", "c")
    assert fake.calls == []


def test_submit_checks_ids_against_a_local_competition(tmp_path, comp_dir, fake):
    path = tmp_path / "s.csv"
    path.write_text("id,similarity\n0,0.5\n1,0.5\n")  # a valid shape, but 28 ids missing
    with pytest.raises(SubmissionError, match="missing ids"):
        kaggle_client.submit(path, "m", "c", local_competition=comp_dir)
    assert fake.calls == []


def test_leaderboard_rows(fake):
    rows = kaggle_client.leaderboard("specsim-practice")
    assert fake.calls == [("competition_leaderboard_view", ("specsim-practice",), {})]
    assert rows[0] == {"team": "ada", "score": "0.12345", "date": "2025-03-01 10:00:00"}
    text = kaggle_client.format_leaderboard("specsim-practice", rows)
    assert text.index("ada") < text.index("grace")


@pytest.mark.parametrize("status, words", [(403, "accept the competition rules"), (404, "no competition"),
                                           (None, "connection")])
def test_http_errors_become_one_line(status, words):
    api = FakeKaggleApi(fail=HttpError(status) if status else ConnectionError("network unreachable"))
    with pytest.raises(UserError, match=words) as info:
        kaggle_client.leaderboard("c", api=api)
    assert "\n" not in str(info.value)


def test_credential_sources(tmp_path):
    assert kaggle_client.credential_source({}, home=tmp_path) is None
    assert kaggle_client.credential_source({"KAGGLE_USERNAME": "u", "KAGGLE_KEY": "k"}, home=tmp_path)
    (tmp_path / ".kaggle").mkdir()
    (tmp_path / ".kaggle" / "kaggle.json").write_text('{"username": "u", "key": "k"}')
    assert kaggle_client.credential_source({}, home=tmp_path).endswith("kaggle.json")


def test_cli_actions_use_the_api(tmp_path, comp_dir, fake, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = perfect_submission(comp_dir, tmp_path / "s.csv")
    assert main(["kaggle", "submit", str(path), "-m", "try", "-c", "comp", "--local-competition", str(comp_dir)]) == 0
    assert main(["kaggle", "download", "comp", "-p", str(tmp_path / "dl")]) == 0
    assert main(["kaggle", "leaderboard", "comp"]) == 0
    assert [c[0] for c in fake.calls] == ["competition_submit", "competition_download_files",
                                         "competition_leaderboard_view"]
    out = capsys.readouterr().out
    assert "Successfully submitted" in out and "ada" in out and "checked" in out.lower()


def test_cli_refuses_a_bad_file_before_connecting(tmp_path, monkeypatch, capsys):
    def no_connection():
        raise AssertionError("must not connect")

    monkeypatch.setattr(kaggle_client, "connect", no_connection)
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


class FakeHostApi(FakeKaggleApi):
    """The hosting half of KaggleApi 2.2.5 (signatures copied), reading what it is given as Kaggle would."""

    def __init__(self, fail_at=None, fail=None, page_exists=False):
        super().__init__()
        self.fail_at, self.host_fail, self.page_exists = fail_at, fail, page_exists
        self.uploaded, self.pages, self.metadata, self.solution = {}, {}, None, None

    def _host(self, name, kwargs):
        self.calls.append((name, (), kwargs))
        if name == self.fail_at:
            raise self.host_fail

    def competition_initialize(self, folder):
        self._host("competition_initialize", {"folder": folder})
        path = Path(folder) / "competition-metadata.json"
        path.write_text('{"title": "INSERT_TITLE_HERE", "slug": "INSERT_SLUG_HERE", '
                        '"briefDescription": "INSERT_BRIEF_DESCRIPTION_HERE", "privacy": "PUBLIC", "hackathon": false}')
        return str(path)

    def competition_create_new(self, folder):
        self._host("competition_create_new", {"folder": folder})
        self.metadata = json.loads((Path(folder) / "competition-metadata.json").read_text())
        assert "INSERT_" not in json.dumps(self.metadata)
        return SimpleNamespace(url=f"https://www.kaggle.com/competitions/{self.metadata['slug']}")

    def competition_data_update(self, competition_name, path, version_notes, rerun=False, quiet=False,
                                include_hidden=False, ignore_patterns=None):
        self._host("competition_data_update", {"competition_name": competition_name, "version_notes": version_notes})
        for full in sorted(Path(path).rglob("*")):
            if full.is_file():
                self.uploaded[full.relative_to(path).as_posix()] = full.read_bytes()

    def competition_create_solution(self, competition_name, path, quiet=False):
        self._host("competition_create_solution", {"competition_name": competition_name, "path": path})
        self.solution = Path(path).read_text()

    def competition_create_page(self, competition_name, page_name, content_path, mime_type=None, post_title=None,
                                publish=False):
        self._host("competition_create_page", {"page_name": page_name, "publish": publish})
        if self.page_exists:
            raise HttpError(409)
        self.pages[page_name] = Path(content_path).read_text()

    def competition_update_page(self, competition_name, page_name, content_path=None, new_name=None, mime_type=None,
                                post_title=None, is_published=None):
        self._host("competition_update_page", {"page_name": page_name, "is_published": is_published})
        self.pages[page_name] = Path(content_path).read_text()

    def competition_update_settings(self, competition_name, updates):
        self._host("competition_update_settings", {"updates": updates})

    def competition_launch(self, competition_name, future_time=None):
        self._host("competition_launch", {"competition_name": competition_name})


HOST_METHODS = ["competition_initialize", "competition_create_new", "competition_data_update",
                "competition_create_solution", "competition_create_page", "competition_update_page",
                "competition_update_settings", "competition_launch"]


@pytest.mark.parametrize("method", HOST_METHODS)
def test_host_fake_matches_the_installed_kaggle_api(method):
    fake = list(inspect.signature(getattr(FakeHostApi, method)).parameters)
    assert _installed_signature(method)[: len(fake)] == fake


def test_settings_sent_are_fields_of_the_installed_competition_settings(comp_dir):
    settings_module = pytest.importorskip("kagglesdk.competitions.types.host_service")
    fields = {meta.field_name: meta.field_type for meta in settings_module.CompetitionSettings._fields}
    meta = json.loads((comp_dir / "competition.json").read_text())
    (comp_dir / "competition.json").write_text(json.dumps(dict(meta, deadline="2026-06-30")))
    call = kaggle_client.host_plan(comp_dir, "specsim-class").calls[-1]
    assert call.method == "competition_update_settings" and call.kwargs["updates"]
    for key, value in call.kwargs["updates"].items():
        assert key in fields
        if fields[key] is datetime:  # a day alone means its last minute, as in the Codabench bundle
            assert datetime.fromisoformat(value.replace("Z", "+00:00")) == datetime(2026, 6, 30, 23, 59, tzinfo=timezone.utc)
        else:
            assert isinstance(value, fields[key])


@pytest.fixture
def host_fake(monkeypatch):
    api = FakeHostApi()
    monkeypatch.setattr(kaggle_client, "connect", lambda: api)
    return api


def test_host_uploads_public_files_solution_pages_and_settings(comp_dir, host_fake, capsys):
    assert main(["kaggle", "host", "--competition", str(comp_dir), "--slug", "specsim-class",
                 "--title", "Spectral similarity 2026"]) == 0
    methods = [c[0] for c in host_fake.calls]
    assert methods == ["competition_initialize", "competition_create_new", "competition_data_update",
                       "competition_create_solution"] + ["competition_create_page"] * 4 + ["competition_update_settings"]
    assert host_fake.metadata["slug"] == "specsim-class" and host_fake.metadata["title"] == "Spectral similarity 2026"
    assert host_fake.metadata["hackathon"] is False  # the rest of Kaggle's template is kept
    public = sorted(p.name for p in comp_dir.iterdir() if p.is_file())
    assert sorted(host_fake.uploaded) == public
    assert all(host_fake.uploaded[name] == (comp_dir / name).read_bytes() for name in public)
    assert host_fake.solution == (comp_dir / "private" / "solution.csv").read_text()
    assert host_fake.solution.splitlines()[0] == "id,similarity,Usage"
    assert set(host_fake.pages) == {"description", "evaluation", "data-description", "rules"}
    assert "MS2DeepScore" in host_fake.pages["description"]
    out = capsys.readouterr().out
    assert "a draft" in out and "maximum daily submissions: 5" in out and "Root Mean Squared Error" in out


def test_host_launches_only_when_asked(comp_dir, host_fake):
    kaggle_client.host(comp_dir, "specsim-class", launch=True, echo=lambda line: None)
    assert host_fake.calls[-1][0] == "competition_launch"


def test_existing_pages_are_updated(comp_dir, monkeypatch):
    api = FakeHostApi(page_exists=True)
    kaggle_client.host(comp_dir, "specsim-class", api=api, echo=lambda line: None)
    updates = [c for c in api.calls if c[0] == "competition_update_page"]
    assert len(updates) == 4 and all(c[2]["is_published"] is True for c in updates)
    assert set(api.pages) == {"description", "evaluation", "data-description", "rules"}


def test_dry_run_prints_every_call_and_touches_nothing(comp_dir, tmp_path, monkeypatch, capsys):
    def no_connection():
        raise AssertionError("a dry run must not connect")

    monkeypatch.setattr(kaggle_client, "connect", no_connection)
    monkeypatch.chdir(tmp_path)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    assert main(["kaggle", "host", "--competition", str(comp_dir), "--slug", "specsim-class", "--launch",
                 "--dry-run"]) == 0
    out = capsys.readouterr().out
    calls = [line for line in out.splitlines() if line.startswith("api.")]
    assert [c.split("(")[0] for c in calls] == [
        "api.competition_initialize", "api.competition_create_new", "api.competition_data_update",
        "api.competition_create_solution"] + ["api.competition_create_page"] * 4 + [
        "api.competition_update_settings", "api.competition_launch"]
    assert "competition_name='specsim-class'" in calls[2] and "solution.csv" in calls[3]
    assert '"slug": "specsim-class"' in out
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("step, failure, words", [
    ("competition_create_new", HttpError(409), "exists already"),
    ("competition_data_update", ConnectionError("network unreachable"), "done: initialize, create_new"),
    ("competition_create_solution", HttpError(401), "check your credentials"),
])
def test_kaggle_refusing_a_step_is_one_line(comp_dir, monkeypatch, capsys, step, failure, words):
    api = FakeHostApi(fail_at=step, fail=failure)
    monkeypatch.setattr(kaggle_client, "connect", lambda: api)
    assert main(["kaggle", "host", "--competition", str(comp_dir), "--slug", "specsim-class"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kit kaggle: error:") and words in err[0]
    assert api.calls[-1][0] == step


def test_an_older_kaggle_package_is_named(comp_dir):
    class OldApi:  # kaggle 1.7: no competition hosting
        pass

    with pytest.raises(UserError, match="kaggle 2.x"):
        kaggle_client.host(comp_dir, "specsim-class", api=OldApi(), echo=lambda line: None)


@pytest.mark.parametrize("argv, words", [
    (["--slug", "Bad_Slug"], "lowercase letters"),
    (["--slug", "ab"], "3 to 50"),
    (["--slug=-leading"], "lowercase letters"),
    (["--slug", "x" * 51], "3 to 50"),
    (["--slug", "ok-slug", "--title", "   "], "1 to 100 characters"),
])
def test_bad_host_options_are_one_line_before_connecting(comp_dir, monkeypatch, capsys, argv, words):
    monkeypatch.setattr(kaggle_client, "connect", lambda: pytest.fail("must not connect"))
    assert main(["kaggle", "host", "--competition", str(comp_dir), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]


def test_host_needs_the_answers(comp_dir, tmp_path, monkeypatch, capsys):
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in comp_dir.iterdir():
        if path.is_file():
            (copy / path.name).write_bytes(path.read_bytes())
    monkeypatch.setattr(kaggle_client, "connect", lambda: pytest.fail("must not connect"))
    assert main(["kaggle", "host", "--competition", str(copy), "--slug", "specsim-class"]) == 2
    assert "private" in capsys.readouterr().err


def test_host_without_credentials_one_line_and_exit_2(tmp_path, comp_dir):
    done = kit_cli("kaggle", "host", "--competition", comp_dir, "--slug", "specsim-class", cwd=tmp_path,
                   env=_no_credentials(tmp_path))
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "KAGGLE_API_TOKEN" in lines[0]
