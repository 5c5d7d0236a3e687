"""``kit reveal``: the final ranking from the terminal, on the store or through a running server."""
import pytest

pytest.importorskip("uvicorn")

from builders import make_competition  # noqa: E402
from kit.board.store import DB_NAME, Database  # noqa: E402
from kit.cli import main  # noqa: E402
from kit.server.app import create_app  # noqa: E402
from server_builders import LiveServer  # noqa: E402


def reveal(capsys, *argv):
    code = main(["reveal", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def settings(comp):
    db = Database(comp / "private" / DB_NAME)
    try:
        return {key: value for key, value in db.settings().items() if key in ("revealed", "closed", "deadline")}
    finally:
        db.close()


def test_reveal_and_undo_on_the_store(capsys, tmp_path):
    comp = make_competition(tmp_path / "data")
    code, out, _ = reveal(capsys, "--competition", str(comp))
    assert code == 0 and "Revealed" in out
    assert settings(comp) == {"revealed": "1", "closed": "1"}
    code, out, _ = reveal(capsys, "--competition", str(comp), "--undo")
    assert code == 0 and "stay closed" in out
    assert settings(comp) == {"revealed": "0", "closed": "1"}


def test_reveal_through_the_server_with_the_teacher_token(capsys, tmp_path):
    comp = make_competition(tmp_path / "data")
    app = create_app(comp, leaderboard=tmp_path / "lb", export_interval=5)
    with LiveServer(app) as server:
        code, out, err = reveal(capsys, "--competition", str(comp), "--server", server.url)
        assert code == 0, err
        assert app.state.kit.db.revealed
        code, _, _ = reveal(capsys, "--competition", str(comp), "--server", server.url, "--undo")
        assert code == 0 and not app.state.kit.db.revealed


@pytest.mark.parametrize("trouble, expected", [
    ("no token file", "cannot read the teacher token"),
    ("not a token", "does not hold a teacher token"),
    ("bad server", "expected an address"),
    ("nobody there", "cannot reach"),
])
def test_reveal_errors_are_one_line(capsys, tmp_path, trouble, expected):
    from kit.commands.serve import listen

    comp = make_competition(tmp_path / "data")
    token = comp / "private" / "teacher_token"
    token.unlink(missing_ok=True)
    if trouble != "no token file":
        token.write_text("x" if trouble == "not a token" else "t" * 32)
    sock = listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    sock.close()
    server = "ftp://x" if trouble == "bad server" else f"http://127.0.0.1:{port}"
    code, out, err = reveal(capsys, "--competition", str(comp), "--server", server)
    assert code == 2 and expected in err and "Traceback" not in err and out == ""
