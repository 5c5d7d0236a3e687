"""Fetching a public spectral library once into a cache folder."""
import os
import urllib.error
import urllib.request
from pathlib import Path

from kit.errors import UserError
from kit.fileio import atomic_path

MASSBANK_URL = "https://github.com/MassBank/MassBank-data/releases/download/2025.10/MassBank_NISTformat.msp"
# Lets a mirror (or a test server) stand in for the release page.
MASSBANK_URL_ENV = "SPECSIM_MASSBANK_URL"


def massbank_url():
    """The MassBank release file to download (``$SPECSIM_MASSBANK_URL`` overrides it)."""
    return os.environ.get(MASSBANK_URL_ENV) or MASSBANK_URL


def download(url, target, progress=True, timeout=60):
    """Download ``url`` to ``target`` unless it is already there; return the path.

    The file is written under a temporary name and renamed when complete, so an
    interrupted download never leaves a truncated library behind.

    Examples
    --------
    >>> download(massbank_url(), "data/cache/MassBank_NISTformat.msp")   # doctest: +SKIP
    """
    from tqdm import tqdm

    target = Path(target)
    if target.is_file() and target.stat().st_size > 0:
        return target
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, atomic_path(target) as tmp:
            total = int(response.headers.get("Content-Length") or 0) or None
            with open(tmp, "wb") as out, tqdm(
                total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=f"downloading {target.name}", disable=not progress
            ) as bar:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    bar.update(len(block))
            if total is not None and tmp.stat().st_size != total:
                raise UserError(f"download of {url} stopped early: expected {total:,} bytes, got {tmp.stat().st_size:,}")
    except urllib.error.HTTPError as exc:
        raise UserError(f"could not download {url}: the server answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError(
            f"could not download {url} ({reason}); expected network access, or download it yourself "
            "and pass --library PATH"
        ) from None
    return target


def fetch_massbank(cache_dir, progress=True):
    """The MassBank library (NIST MSP format), downloaded once into ``cache_dir``."""
    url = massbank_url()
    name = Path(urllib.request.url2pathname(url.rsplit("/", 1)[-1])).name or "massbank.msp"
    return download(url, Path(cache_dir) / name, progress=progress)


