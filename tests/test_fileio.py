"""kit.fileio: atomic writes, and files and folders as readable as the umask allows."""
import os
import stat

import pytest

from kit.fileio import atomic_dir, atomic_path, current_umask, write_text_atomic


@pytest.fixture(params=[0o022, 0o077, 0o002, 0o027, 0o000])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_current_umask_reads_without_changing_it(umask):
    assert current_umask() == umask
    assert current_umask() == umask


def test_atomic_files_get_the_umask_mode_not_mkstemps_0600(tmp_path, umask):
    assert mode(write_text_atomic(tmp_path / "a.txt", "x")) == 0o666 & ~umask
    with atomic_path(tmp_path / "b.bin") as tmp:
        tmp.write_bytes(b"x")
    assert mode(tmp_path / "b.bin") == 0o666 & ~umask


def test_a_writer_that_replaces_the_temporary_file_still_gets_the_umask_mode(tmp_path, umask):
    with atomic_path(tmp_path / "c.txt") as tmp:
        tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600)
        os.close(fd)
    assert mode(tmp_path / "c.txt") == 0o666 & ~umask


def test_atomic_dir_gets_the_umask_mode(tmp_path, umask):
    with atomic_dir(tmp_path / "d") as tmp:
        (tmp / "inside.txt").write_text("x")
    assert mode(tmp_path / "d") == 0o777 & ~umask
    assert mode(tmp_path / "d" / "inside.txt") == 0o666 & ~umask


def test_replacing_an_existing_file_keeps_the_umask_mode(tmp_path):
    target = tmp_path / "e.txt"
    target.write_text("old")
    target.chmod(0o600)
    write_text_atomic(target, "new")
    assert mode(target) == 0o666 & ~current_umask()
    assert target.read_text() == "new"


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "f.txt") as tmp:
            tmp.write_text("half")
            raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []
