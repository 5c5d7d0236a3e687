"""kit.kaggle_client and ``kit kaggle``: calls match kaggle 2.x, checked locally first, no network."""
import ast
import importlib.util
import inspect
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from builders import make_competition, perfect_submission

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


@pytest.mark.parametrize("action", [["leaderboard", "some-competition"], ["download", "some-competition"]])
def test_without_credentials_one_line_and_exit_2(tmp_path, action):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE_")}
    env.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / ".config"))
    done = subprocess.run([sys.executable, "-m", "kit", "kaggle", *action], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert not (tmp_path / "data").exists()
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "KAGGLE_API_TOKEN" in lines[0] and "kaggle.json" in lines[0]
    assert done.stdout == "" and not (tmp_path / ".config" / "kaggle").exists()
