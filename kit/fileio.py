"""Writing files so that a reader never sees half of one: temporary name, then rename."""
import contextlib
import hashlib
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from kit.errors import UserError

#: Modes of new files and folders before the umask, as ``open`` and ``mkdir`` use them.
FILE_MODE = 0o666
DIR_MODE = 0o777
#: Modes of the files and folders that hold answers, tokens and scores (``private/``):
#: owner only, whatever the umask.
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def current_umask():
    """The process umask, read without changing it where the system allows.

    ``os.umask`` can only be read by setting it, which races with other threads creating
    files; Linux shows it in ``/proc/self/status``.

    Examples
    --------
    >>> 0 <= current_umask() <= 0o777
    True
    """
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0o077)
    os.umask(umask)
    return umask


def ensure_writable_dir(path):
    """Create ``path`` (and parents) or raise a one-line :class:`UserError`.

    Examples
    --------
    >>> ensure_writable_dir("/tmp/kit-doc-example").is_dir()
    True
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create folder {path}: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserError(f"folder {path} is not writable: expected a folder you can write to")
    return path


def create_private_file(path):
    """Create ``path`` readable and writable by its owner only (0600), whatever the umask.

    An existing file is left as it is, except for its mode. Returns ``path``.

    Examples
    --------
    >>> oct(create_private_file("/tmp/kit-doc-example/secret.db").stat().st_mode & 0o777)
    '0o600'
    """
    path = Path(path)
    try:
        # Created owner-only from the start (no moment when others could open it); the chmod
        # also covers a file that existed before with a wider mode.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), PRIVATE_FILE_MODE))
        path.chmod(PRIVATE_FILE_MODE)
    except OSError as exc:
        raise UserError(f"cannot create {path}: {exc.strerror or exc}") from None
    return path


@contextlib.contextmanager
def atomic_path(target, suffix="", private=False):
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success.

    On any exception the temporary file is removed and ``target`` is untouched. The
    finished file gets the mode any new file of the user gets (``0666`` less the umask),
    or ``0600`` with ``private=True`` whatever the umask.

    Examples
    --------
    >>> with atomic_path("/tmp/kit-doc-example/a.txt") as tmp:
    ...     _ = tmp.write_text("hello")
    """
    target = Path(target)
    ensure_writable_dir(target.parent)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix + ".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        # mkstemp makes the file private (0600) while it is written; the finished file is
        # as readable as any other the user creates, unless private. Done last: a writer
        # may have replaced it.
        if tmp.is_file() and not tmp.is_symlink():
            tmp.chmod(PRIVATE_FILE_MODE if private else FILE_MODE & ~current_umask())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(target, text, encoding="utf-8", private=False):
    """Write ``text`` to ``target`` through a temporary file and a rename (``0600`` if ``private``)."""
    with atomic_path(target, private=private) as tmp:
        tmp.write_text(text, encoding=encoding)
    return Path(target)


@contextlib.contextmanager
def atomic_dir(target, force=False):
    """Yield a temporary folder beside ``target``; it becomes ``target`` on success.

    An existing ``target`` is refused unless ``force``; with ``force`` it is replaced
    only once the new folder is complete.
    """
    target = Path(target)
    if target.exists() and not force:
        raise UserError(f"{target} already exists: expected a new folder (use --force to replace it)")
    ensure_writable_dir(target.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    # mkdtemp makes a private folder; the finished one should look like any other.
    tmp.chmod(DIR_MODE & ~current_umask())
    try:
        yield tmp
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def sha256_file(path, chunk_size=1 << 20):
    """Hex sha256 of a file, read in chunks.

    Examples
    --------
    >>> p = write_text_atomic("/tmp/kit-doc-example/b.txt", "abc")
    >>> sha256_file(p)[:12]
    'ba7816bf8f01'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


def jsonable(value):
    """A JSON-friendly copy of ``value`` for the manifests the kit writes.

    NaN and infinite floats become None (JSON has no such numbers), numpy scalars and
    small arrays become Python numbers and lists, paths strings, keys strings; anything
    else its ``repr`` (at most 200 characters).

    Examples
    --------
    >>> import numpy as np
    >>> jsonable({"lr": np.float32(0.5), "score": float("nan"), 3: (1, np.int64(2))})
    {'lr': 0.5, 'score': None, '3': [1, 2]}
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray) and value.size <= 100:
        return jsonable(value.tolist())
    if isinstance(value, Path):
        return str(value)
    return repr(value)[:200]


def append_line(path, line, header=""):
    """Append one line to a text file in one ``write``, then ``fsync`` (locking is the caller's).

    A writer killed mid-line leaves a line without its newline; this one ends that line
    first, so the damage stays on one line that readers skip. ``header`` is written
    first when the file is new or empty. The file gets 0o666 less the umask.

    Raises
    ------
    OSError
        When the file cannot be opened or the disk takes only part of the line.

    Examples
    --------
    >>> path = Path(tempfile.mkdtemp()) / "log.csv"
    >>> append_line(path, "1,a\\n", header="id,name\\n"); append_line(path, "2,b\\n")
    >>> path.read_text()
    'id,name\\n1,a\\n2,b\\n'
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
    try:
        size = os.fstat(fd).st_size
        prefix = header if size == 0 else ""
        if size and os.pread(fd, 1, size - 1) != b"\n":
            prefix = "\n"
        payload = (prefix + line).encode("utf-8")
        written = os.write(fd, payload)
        if written != len(payload):  # a full disk: say so instead of leaving half a line
            raise OSError(f"wrote {written} of {len(payload)} bytes (is the disk full?)")
        os.fsync(fd)
    finally:
        os.close(fd)
