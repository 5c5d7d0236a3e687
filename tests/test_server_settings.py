"""The server's settings (kit.server.settings): one frozen object, every value checked by kit.constraints."""
import dataclasses
import json

import pytest

pytest.importorskip("fastapi")

from kit.errors import UserError  # noqa: E402
from kit.server.app import create_app  # noqa: E402
from kit.server.settings import CONSTRAINTS, Settings  # noqa: E402
from test_server import clock, comp  # noqa: E402,F401

SECONDS = ["refresh_seconds", "upload_timeout", "request_timeout", "anonymous_timeout"]
COUNTS = ["uploads_per_token", "anonymous_per_address"]


def test_text_options_are_parsed_as_kit_serve_passes_them():
    settings = Settings(refresh_seconds="2.5", upload_timeout="30", max_upload_mb="0.5", uploads_per_token="3")
    assert (settings.refresh_seconds, settings.upload_timeout, settings.max_upload_mb, settings.uploads_per_token) \
        == (2.5, 30.0, 0.5, 3)
    assert isinstance(settings.uploads_per_token, int)


def test_defaults_are_valid_and_the_object_is_frozen():
    settings = Settings()
    assert settings.max_upload_mb is None and settings.tz.utcoffset(None).total_seconds() == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.upload_timeout = 1


@pytest.mark.parametrize("name", SECONDS + ["max_upload_mb"])
@pytest.mark.parametrize("value", [0, -1, "0", "-0.5", "nan", "inf", "-inf", float("nan"), float("inf"), "soon", "",
                                   " ", "1e400", "0x10", True, [1], "1_0s"])
def test_bad_seconds_and_megabytes_are_one_line_naming_the_setting(name, value):
    with pytest.raises(UserError) as refused:
        Settings(**{name: value})
    message = str(refused.value)
    assert message.startswith(CONSTRAINTS[name][0]) and "\n" not in message


@pytest.mark.parametrize("name", COUNTS)
@pytest.mark.parametrize("value", [0, -3, 2.5, "2.5", True, False, "1e3", "many", "", None, float("nan"), [2]])
def test_bad_counts_are_one_line_naming_the_setting(name, value):
    with pytest.raises(UserError, match=f"^{CONSTRAINTS[name][0]} must be an integer >= 1"):
        Settings(**{name: value})


@pytest.mark.parametrize("name", ["Mars/Olympus", "../../etc/passwd", "/etc/localtime", "Europe/Paris\x00", "x" * 5000])
def test_an_unknown_time_zone_is_refused_when_the_settings_are_made(name):
    with pytest.raises(UserError, match="unknown time zone"):
        Settings(timezone_name=name)


def test_create_app_takes_the_settings_and_changes_checked_the_same_way(comp, clock, tmp_path):
    settings = Settings(leaderboard=tmp_path / "lb", clock=clock, export_interval=0, refresh_seconds=3)
    app = create_app(comp, settings)
    assert app.state.kit.refresh_ms == 3000 and app.state.kit.clock is clock
    assert create_app(comp, settings, upload_timeout="7").state.kit.upload_timeout == 7.0
    with pytest.raises(UserError, match="upload timeout"):
        create_app(comp, settings, upload_timeout="0")


@pytest.mark.parametrize("cap", [0, -1, "big", None, [], True, "nan", 1e-9, "Infinity"])
def test_a_bad_upload_cap_in_competition_json_is_one_line(comp, tmp_path, cap):
    meta_path = comp / "competition.json"
    meta_path.write_text(json.dumps({**json.loads(meta_path.read_text()), "max_upload_mb": cap}))
    with pytest.raises(UserError, match="^upload cap"):
        create_app(comp, Settings(leaderboard=tmp_path / "lb"))


@pytest.mark.parametrize("argv, expected", [
    (["--refresh", "0"], "refresh every"), (["--refresh", "nan"], "refresh every"),
    (["--max-upload-mb", "inf"], "upload cap"), (["--max-upload-mb", "0"], "upload cap"),
    (["--anonymous-uploads", "1"], None),
])
def test_serve_text_options_reach_the_settings(capsys, comp, monkeypatch, argv, expected):
    from kit.cli import main
    from kit.commands import serve

    def no_listening(host, port):
        raise UserError("stopped before listening")

    monkeypatch.setattr(serve, "listen", no_listening)
    code = main(["serve", "--competition", str(comp), "--leaderboard", str(comp.parent / "lb"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert (expected or "stopped before listening") in err


@pytest.mark.parametrize("command, option, value", [
    *[("serve", "--port", value) for value in ["-1", "70000", "nan", "inf", "x", "1e3x", "8000.5"]],
    *[("submit", "--timeout", value) for value in ["0", "-1", "nan", "inf", "x", "1e3x"]],
])
def test_port_and_timeout_options_are_checked_by_argparse(capsys, comp, command, option, value):
    from kit.cli import main

    argv = ["serve", "--competition", str(comp)] if command == "serve" else \
        ["submit", "x.csv", "--server", "http://127.0.0.1:9", "--token", "t" * 32]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, f"{option}={value}"])
    assert exit_info.value.code == 2 and "expected " in capsys.readouterr().err
