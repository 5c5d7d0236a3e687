"""Fetching a public spectral library once into a cache folder.

A download is untrusted until checked: it is written under a temporary name, must arrive
whole (as long as the server announced) within an overall deadline, and must parse as a
spectral library with at least one spectrum before it is renamed into the cache. A file
already in the cache is checked again before use, and a bad one is named in the error
together with how to clear it.
"""
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from kit.data.spectra import count_records, read_spectra
from kit.errors import UserError
from kit.fileio import atomic_path

MASSBANK_URL = "https://github.com/MassBank/MassBank-data/releases/download/2025.10/MassBank_NISTformat.msp"
# Lets a mirror (or a test server) stand in for the release page.
MASSBANK_URL_ENV = "SPECSIM_MASSBANK_URL"
TIMEOUT = 60          # seconds the server may stay silent
DEADLINE = 3600       # seconds for the whole download
MAX_BYTES = 4 << 30   # MassBank's MSP is a few hundred MB; more than this is not a library
CHUNK = 1 << 16


def massbank_url():
    """The MassBank release file to download (``$SPECSIM_MASSBANK_URL`` overrides it)."""
    return os.environ.get(MASSBANK_URL_ENV) or MASSBANK_URL


def clear_hint(path):
    """How to get rid of a bad cached file: the sentence every such error ends with.

    Examples
    --------
    >>> clear_hint("data/cache/MassBank_NISTformat.msp")
    'delete data/cache/MassBank_NISTformat.msp and run again to download it afresh'
    """
    return f"delete {path} and run again to download it afresh"


def check_library(path, fmt, full=True):
    """Raise :class:`UserError` unless ``path`` parses as a ``fmt`` library with a spectrum.

    ``full`` parses every record (a fresh download); otherwise only up to the first
    spectrum (a quick look at a cached file, which ``kit prepare`` parses in full anyway).

    Examples
    --------
    >>> check_library("data/cache/MassBank_NISTformat.msp", "msp")   # doctest: +SKIP
    """
    path = Path(path)
    with open(path, "rb") as handle:
        head = handle.read(1024)
    start = head.lstrip().lower()
    if start.startswith((b"<!doctype html", b"<html", b"<?xml", b"<")) and fmt != "mzml":
        raise UserError(f"{path}: a web page or XML document, not a {fmt} library (the server may have sent an error page)")
    if b"\0" in head:
        raise UserError(f"{path}: binary data, not a {fmt} library")
    if full:
        found = count_records(path, fmt=fmt)
    else:
        spectra = read_spectra(path, fmt=fmt)
        found = int(next(spectra, None) is not None)
        spectra.close()
    if not found:
        raise UserError(f"{path}: no spectra found: expected a {fmt} library with at least one spectrum")
    return found


def _content_length(response):
    value = response.headers.get("Content-Length")
    try:
        length = int(value)
    except (TypeError, ValueError):
        return None
    return length if length >= 0 else None


def _socket_of(response):
    """The response's socket, so that each read waits no longer than the deadline allows."""
    raw = getattr(getattr(response, "fp", None), "raw", None)
    return getattr(raw, "_sock", None)


def _copy(url, response, out, *, timeout, end, deadline, max_bytes, progress, name):
    """Copy the body to ``out`` within ``end`` (a monotonic time); return the bytes copied."""
    total = _content_length(response)
    if total is not None and total > max_bytes:
        raise UserError(f"could not download {url}: the server announces {total:,} bytes, more than the {max_bytes:,} allowed")
    sock = _socket_of(response)
    copied = 0

    def late():
        return UserError(
            f"could not download {url}: not finished within the {deadline:g} s deadline "
            f"({copied:,} of {f'{total:,}' if total is not None else 'unknown'} bytes)"
        )

    with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=f"downloading {name}", disable=not progress) as bar:
        while True:
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise late()
            if sock is not None:
                sock.settimeout(min(timeout, remaining))
            # read1 returns what has arrived instead of waiting for a full block, so a
            # server that trickles bytes cannot hold a single read past the deadline.
            try:
                block = response.read1(CHUNK)
            except TimeoutError:
                if time.monotonic() >= end:
                    raise late() from None
                raise
            if not block:
                break
            copied += len(block)
            if copied > max_bytes:
                raise UserError(f"could not download {url}: more than the {max_bytes:,} bytes allowed")
            out.write(block)
            bar.update(len(block))
    if total is not None and copied != total:
        raise UserError(f"could not download {url}: the download stopped early: expected {total:,} bytes, got {copied:,}")
    return copied


def download(url, target, progress=True, timeout=TIMEOUT, deadline=DEADLINE, fmt=None, max_bytes=MAX_BYTES):
    """Download ``url`` to ``target`` unless a good copy is already there; return the path.

    Parameters
    ----------
    url : str
    target : str or Path
        Where the file lives in the cache.
    progress : bool
        Show a progress bar.
    timeout : float
        Seconds the server may stay silent.
    deadline : float
        Seconds for the whole download, however the server paces it.
    fmt : {"mgf", "msp", "mzml", "json"}, optional
        Check that the file parses as a library of this format with at least one
        spectrum: in full before a download enters the cache, up to its first spectrum
        for a cached copy.
    max_bytes : int
        Refuse a body larger than this.

    The file is written under a temporary name and renamed only when complete and
    checked, so an interrupted or bad download leaves nothing behind.

    Examples
    --------
    >>> download(massbank_url(), "data/cache/MassBank_NISTformat.msp", fmt="msp")   # doctest: +SKIP
    """
    target = Path(target)
    if target.is_file() and target.stat().st_size > 0:
        if fmt is not None:
            try:
                check_library(target, fmt, full=False)
            except UserError as exc:
                raise UserError(f"the cached download is not usable: {exc}; {clear_hint(target)}") from None
        return target
    if target.exists() and not target.is_file():
        raise UserError(f"{target} is in the way of the download: expected a file, found a folder ({clear_hint(target)})")
    end = time.monotonic() + float(deadline)
    try:
        with urllib.request.urlopen(url, timeout=min(float(timeout), float(deadline))) as response, atomic_path(target) as tmp:
            with open(tmp, "wb") as out:
                _copy(url, response, out, timeout=float(timeout), end=end, deadline=float(deadline), max_bytes=int(max_bytes),
                      progress=progress, name=target.name)
            if fmt is not None:
                try:
                    check_library(tmp, fmt, full=True)
                except UserError as exc:
                    detail = str(exc).removeprefix(f"{tmp}: ")
                    raise UserError(
                        f"could not download {url}: what arrived is not usable ({detail}); nothing was cached"
                    ) from None
    except UserError:
        raise
    except urllib.error.HTTPError as exc:
        raise UserError(f"could not download {url}: the server answered {exc.code} {exc.reason}") from None
    except TimeoutError:
        raise UserError(f"could not download {url}: the server sent nothing for {min(timeout, deadline):g} s") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError(
            f"could not download {url} ({reason}); expected network access, or download it yourself "
            "and pass --library PATH"
        ) from None
    return target


def fetch_massbank(cache_dir, progress=True, deadline=DEADLINE):
    """The MassBank library (NIST MSP format), downloaded once into ``cache_dir`` and checked.

    Examples
    --------
    >>> fetch_massbank("data/cache")   # doctest: +SKIP
    PosixPath('data/cache/MassBank_NISTformat.msp')
    """
    url = massbank_url()
    name = Path(urllib.request.url2pathname(url.rsplit("/", 1)[-1].split("?", 1)[0])).name or "massbank.msp"
    return download(url, Path(cache_dir) / name, progress=progress, deadline=deadline, fmt="msp")
