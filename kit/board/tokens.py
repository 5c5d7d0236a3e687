"""Tokens: random participant tokens stored as their sha256, and the teacher token kept in ``private/``."""
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from kit.errors import UserError
from kit.fileio import ensure_writable_dir

TEACHER_TOKEN_FILE = "teacher_token"


def new_token():
    """A fresh random token (32 URL-safe characters, 192 bits), never starting with ``-``.

    One in 64 would otherwise begin with a dash, which a command line reads as an option
    (``kit submit --token -x...`` fails).

    Examples
    --------
    >>> len(new_token()), new_token()[0] != "-"
    (32, True)
    """
    while True:
        token = secrets.token_urlsafe(24)
        if not token.startswith("-"):
            return token


def hash_token(token):
    """The sha256 (hex) of a token: what the database keeps instead of the token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def ensure_teacher_token(private_dir):
    """The teacher token of a competition, created on first use.

    Parameters
    ----------
    private_dir : Path
        The competition's ``private/`` folder.

    Returns
    -------
    (str, bool)
        The token and whether it was created by this call (then print it once).

    Examples
    --------
    >>> token, created = ensure_teacher_token(Path("/tmp/kit-doc-comp/private"))  # doctest: +SKIP
    """

    path = ensure_writable_dir(private_dir) / TEACHER_TOKEN_FILE
    token = new_token()
    try:
        # O_EXCL: two first calls at once cannot both create (and print) a token.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_teacher_token(path), False
    except OSError as exc:
        raise UserError(f"cannot create {path}: {exc.strerror or exc}") from None
    try:
        os.write(fd, (token + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return token, True


def read_teacher_token(path):
    """The token kept in ``private/teacher_token``; a :class:`UserError` when unusable."""
    try:
        token = Path(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the teacher token {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if len(token) < 16 or not token.isprintable() or " " in token:
        raise UserError(f"{path} does not hold a teacher token: delete it and run `kit participants list` to make a new one")
    return token


def same_token(given, expected_hash):
    """Constant-time comparison of a presented token with a stored hash."""
    return hmac.compare_digest(hash_token(given), expected_hash)

