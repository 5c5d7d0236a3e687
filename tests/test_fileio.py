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


def test_private_atomic_files_are_0600_whatever_the_umask(tmp_path, umask):
    assert mode(write_text_atomic(tmp_path / "secret.txt", "x", private=True)) == 0o600
    with atomic_path(tmp_path / "secret.bin", private=True) as tmp:
        tmp.unlink()  # a writer that replaces the temporary file (pandas, matchms) still ends private
        tmp.write_bytes(b"x")
    assert mode(tmp_path / "secret.bin") == 0o600
    # Replacing a readable file with a private one narrows its mode.
    write_text_atomic(tmp_path / "was-public.txt", "x")
    assert mode(write_text_atomic(tmp_path / "was-public.txt", "y", private=True)) == 0o600


def test_create_private_file_is_0600_new_or_existing(tmp_path, umask):
    from kit.fileio import create_private_file

    assert mode(create_private_file(tmp_path / "new.db")) == 0o600
    existing = tmp_path / "old.db"
    existing.write_bytes(b"keep")
    existing.chmod(0o666)
    assert mode(create_private_file(existing)) == 0o600 and existing.read_bytes() == b"keep"


def test_create_private_file_refuses_a_symlink_or_a_missing_folder(tmp_path):
    from kit.errors import UserError
    from kit.fileio import create_private_file

    victim = tmp_path / "victim.txt"
    victim.write_text("x")
    victim.chmod(0o644)
    (tmp_path / "link.db").symlink_to(victim)
    with pytest.raises(UserError, match="cannot create .*link.db"):
        create_private_file(tmp_path / "link.db")
    assert mode(victim) == 0o644
    with pytest.raises(UserError, match="cannot create"):
        create_private_file(tmp_path / "missing" / "x.db")
