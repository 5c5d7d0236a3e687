"""Running a saved model the kit did not just train: in a child process, with limits.

A model folder is untrusted input (:mod:`kit.models.untrusted`). Its files are checked
before anything reads them, but the checks guard against what is known; the child
process guards against the rest. :class:`SandboxedModel` checks the folder in this
process, then loads and runs the model in a child started with multiprocessing's
``spawn`` context (never ``fork``: TensorFlow may be loaded here), which

- sees no GPU (``CUDA_VISIBLE_DEVICES=-1``),
- may map at most ``memory_limit`` bytes (``RLIMIT_AS``; TensorFlow needs more than
  2 GiB of address space just to import, the siamese about :data:`SIAMESE_NEEDS`),
- runs in its own process group, killed whole when a call takes longer than
  ``time_limit`` seconds, on Ctrl-C and on :meth:`SandboxedModel.close`.

Spectra and pairs go to the child pickled through a pipe (the child trusts this
process); predictions come back as raw float64 bytes of the expected length, never
pickled, and this process checks that they are finite. A model whose ``predict`` takes
``return_std`` (the siamese's Monte Carlo dropout) says so when it is loaded; only then
may :meth:`SandboxedModel.predict` ask for a spread, which comes back the same way and
must also be at least 0. A child that fails, runs out of
memory or time, or dies from a signal (a segmentation fault, the kernel's OOM killer)
ends in one :class:`~kit.errors.UserError` line. Nothing is written to disk.

Examples
--------
>>> import kit.models
>>> with kit.models.load("models/friend-gbm", untrusted=True) as model:   # doctest: +SKIP
...     predictions = model.predict(test_spectra, test_pairs)
"""
import inspect
import multiprocessing
import os
import re
import resource
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from kit.constraints import Integral, Interval, check_param
from kit.errors import UserError, first_line
from kit.safetext import printable

#: Address space the child may map unless told otherwise.
DEFAULT_MEMORY_LIMIT = 4 << 30
#: Smallest memory limit accepted: Python, numpy and scikit-learn alone map some 600 MB.
MIN_MEMORY_LIMIT = 1 << 30
#: Seconds the child may take to load the model, and again for each prediction.
DEFAULT_TIME_LIMIT = 600.0
#: Address space a default-size siamese needed to load and predict 5,000 pairs of 256
#: spectra (bench/bench_sandbox.py --memory); TensorFlow's import alone maps about 2 GiB.
SIAMESE_NEEDS = "2.25 GiB"

# What the child sends back: one tag byte, then the payload.
_READY, _RESULT, _ERROR = b"L", b"R", b"E"
# The load's answer of a model that measures its own spread.
_GIVES_STD = b"std"
#: Forward passes a spread may take (each is a full prediction of the pairs).
PASSES = Interval(Integral, 2, 1000)
_MAX_MESSAGE = 64 << 10
_UNITS = {"": 1 << 20, "b": 1, "k": 1000, "kb": 1000, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "t": 10**12, "tb": 10**12, "tib": 1 << 40}
_SECONDS = {"": 1, "s": 1, "m": 60, "min": 60, "h": 3600}


def parse_size(text):
    """Bytes in a size such as ``6GiB``, ``4G``, ``6000MB`` or ``6000`` (MiB); UserError otherwise.

    Examples
    --------
    >>> parse_size("6GiB"), parse_size("6000MB"), parse_size("4096")
    (6442450944, 6000000000, 4294967296)
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(text))
    unit = match and match.group(2).lower()
    if not match or unit not in _UNITS:
        raise UserError(f"memory limit {printable(repr(text), 40)}: expected a size such as 6GiB, 4G or 6000MB")
    size = int(float(match.group(1)) * _UNITS[unit])
    if size < MIN_MEMORY_LIMIT:
        raise UserError(f"memory limit {printable(repr(text), 40)} is below the {MIN_MEMORY_LIMIT >> 30} GiB "
                        "the model process needs to start")
    return size


def parse_duration(text):
    """Seconds in a duration such as ``600``, ``90s``, ``10m`` or ``1h``; UserError otherwise.

    Examples
    --------
    >>> parse_duration("10m"), parse_duration("45")
    (600.0, 45.0)
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(text))
    unit = match and match.group(2).lower()
    if not match or unit not in _SECONDS or float(match.group(1)) <= 0:
        raise UserError(f"time limit {printable(repr(text), 40)}: expected a duration such as 600, 90s, 10m or 1h")
    return float(match.group(1)) * _SECONDS[unit]


def describe_size(size):
    """A byte count for people (``4 GiB``, ``1.5 GiB``, ``512 MiB``)."""
    return f"{size / (1 << 30):g} GiB" if size >= 1 << 30 else f"{size / (1 << 20):g} MiB"


class SandboxedModel:
    """A saved model loaded and run in a child process with memory and time limits.

    Made by ``kit.models.load(path, untrusted=True)``. It predicts like the model it
    wraps and describes itself from the folder's manifest (``name``, ``get_params``,
    ``fit_seconds_``, ``validation_score_``), which is what a submission records. Close
    it (or use it in a ``with`` block) to end the child; an unclosed one ends with the
    program.

    Parameters
    ----------
    path : str or Path
        The model folder.
    memory_limit : int, default :data:`DEFAULT_MEMORY_LIMIT`
        Bytes of address space the child may map (``RLIMIT_AS``).
    time_limit : float, default :data:`DEFAULT_TIME_LIMIT`
        Seconds the child may take to load the model, and again for each ``predict``.

    Raises
    ------
    UserError
        When the folder is refused by the checks here or in the child, or the child runs
        out of memory or time, or dies.

    Examples
    --------
    >>> model = SandboxedModel("models/friend-gbm", memory_limit=6 << 30)   # doctest: +SKIP
    >>> model.predict(test_spectra, test_pairs)[:2]                        # doctest: +SKIP
    array([0.41, 0.07])
    >>> model.close()                                                      # doctest: +SKIP
    """

    def __init__(self, path, memory_limit=DEFAULT_MEMORY_LIMIT, time_limit=DEFAULT_TIME_LIMIT):
        from kit.models import check_folder

        self.path = Path(path)
        self.memory_limit = int(memory_limit)
        self.time_limit = float(time_limit)
        if self.memory_limit < MIN_MEMORY_LIMIT:
            raise UserError(f"memory limit {self.memory_limit:,} bytes is below the {describe_size(MIN_MEMORY_LIMIT)} "
                            "the model process needs to start")
        if not (np.isfinite(self.time_limit) and self.time_limit > 0):
            raise UserError(f"time limit {self.time_limit!r}: expected a positive number of seconds")
        self._where = printable(self.path)
        self._process = self._conn = None
        #: Whether the model measures its own spread (``predict(..., return_std=True)``).
        self.gives_std = False
        # The cheap checks run here first, so a forged folder is refused without a child.
        self.manifest = check_folder(self.path)
        self.name = self.manifest["model"]
        self._start()

    # -- what a submission records --------------------------------------------------
    def get_params(self, deep=True):
        """The parameters the model was saved with (from its manifest)."""
        params = self.manifest.get("params")
        return dict(params) if isinstance(params, dict) else {}

    @property
    def fit_seconds_(self):
        return self.manifest.get("fit_seconds")

    @property
    def validation_score_(self):
        return self.manifest.get("validation_score")

    def __repr__(self):
        return f"SandboxedModel({str(self.path)!r}, name={self.name!r})"

    # -- the child ------------------------------------------------------------------
    def _start(self):
        context = multiprocessing.get_context("spawn")
        self._conn, child_conn = context.Pipe(duplex=True)
        self._process = context.Process(
            target=_child_main, args=(child_conn, str(self.path), self.memory_limit), daemon=True,
            name=f"kit-model-{self.name}",
        )
        try:
            self._process.start()
            child_conn.close()  # only the child holds its end now: its death reads as end of file here
            self.gives_std = self._receive("load", _READY) == _GIVES_STD
        except BaseException:
            self.close()
            raise

    def predict(self, spectra, pairs, return_std=False, n_passes=10):
        """One similarity per pair, predicted in the child (see :meth:`kit.models.base.PairModel.predict`).

        Parameters
        ----------
        spectra, pairs
            As for the model's own ``predict``.
        return_std : bool, default False
            Also return the spread (only for a model with :attr:`gives_std`, the siamese).
        n_passes : int, default 10
            Forward passes that measure the spread (only with ``return_std``).

        Returns
        -------
        numpy.ndarray of float64, one per row of ``pairs``, all finite; with ``return_std``
        a pair ``(mean, std)`` as :meth:`kit.models.siamese.SiameseModel.predict` returns.
        """
        from kit.models.base import check_spectra, pair_indices

        if self._process is None:
            raise UserError(f"{self._where}: this sandboxed model is closed: load it again")
        if return_std and not self.gives_std:
            raise UserError(f"{self._where}: the {self.name} model measures no spread of its predictions")
        n_passes = check_param(n_passes, "n_passes", PASSES) if return_std else None
        check_spectra(spectra)
        n_pairs = len(pair_indices(spectra, pairs)[0])
        n_values = 2 * n_pairs if return_std else n_pairs
        try:
            try:
                self._conn.send((list(spectra), pairs, n_passes))
            except OSError:  # the child is gone (a broken pipe)
                raise UserError(f"{self._where}: {self._death('predict')}") from None
            payload = self._receive("predict", _RESULT, limit=8 * n_values + 1)
        except BaseException:
            self.close()
            raise
        if len(payload) != 8 * n_values:
            self.close()
            raise UserError(f"{self._where}: the model returned {len(payload) // 8:,} numbers for "
                            f"{n_pairs:,} pairs (expected {n_values:,})")
        values = np.frombuffer(payload, dtype="<f8").astype(float)
        if not np.isfinite(values).all():
            bad = int(np.flatnonzero(~np.isfinite(values))[0])
            raise UserError(f"{self._where}: the model predicted {values[bad]} for pair {bad % n_pairs}: expected "
                            "finite numbers")
        if not return_std:
            return values
        mean, std = values[:n_pairs], values[n_pairs:]
        if (std < 0).any():
            bad = int(np.flatnonzero(std < 0)[0])
            raise UserError(f"{self._where}: the model gave a spread of {std[bad]} for pair {bad}: expected a "
                            "number >= 0")
        return mean, std

    def _receive(self, what, tag, limit=_MAX_MESSAGE):
        """The payload of the child's next message, which must carry ``tag``; UserError on any failure."""
        deadline = time.monotonic() + self.time_limit
        while not self._conn.poll(min(1.0, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                self.close()
                raise UserError(
                    f"{self._where}: the model's {what} did not finish within {self.time_limit:g} seconds and was "
                    "stopped (raise the limit with --time-limit)"
                )
        try:
            message = self._conn.recv_bytes(max(limit, _MAX_MESSAGE))
        except (EOFError, OSError):
            raise UserError(f"{self._where}: {self._death(what)}") from None
        if message[:1] == _ERROR:
            self.close()
            raise UserError(printable(message[1:].decode("utf-8", "replace"), 400))
        if message[:1] != tag:
            self.close()
            raise UserError(f"{self._where}: the model process answered out of turn during its {what}")
        return message[1:]

    def _death(self, what):
        """Why the child ended without answering, in words (it is stopped first)."""
        self._process.join(timeout=10)
        code = self._process.exitcode
        self.close()
        if code is None:
            return f"the model process stopped answering during the {what} and was stopped"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            cause = {
                "SIGSEGV": "crashed (segmentation fault: a forged or damaged model file, or too small a memory "
                           f"limit of {describe_size(self.memory_limit)}; raise it with --memory-limit)",
                "SIGKILL": "was killed (by the system, most often for running out of memory)",
                "SIGABRT": f"aborted (most often on reaching its memory limit of {describe_size(self.memory_limit)}; "
                           "raise it with --memory-limit)",
            }.get(name, f"died from {name}")
            return f"the model process {cause} during the {what}"
        return (f"the model process ended (exit code {code}) during the {what} without an answer (most often on "
                f"reaching its memory limit of {describe_size(self.memory_limit)}; raise it with --memory-limit)")

    def close(self):
        """End the child (its whole process group); safe to call twice."""
        process, self._process = self._process, None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if process is None or process.pid is None:
            return
        kill_group(process.pid)
        process.join(timeout=10)
        if process.exitcode is not None:
            process.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - nothing to report at interpreter shutdown
            pass


def kill_group(pid):
    """SIGKILL the process group led by ``pid`` (the child and anything it started), or ``pid`` alone.

    Only a group the child leads is killed: before the child has made its own group it
    still shares this process's, which must survive.
    """
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # already gone


def limit_this_process(memory_limit):
    """Make this (child) process a sandbox: its own process group, no GPU, ``memory_limit`` bytes.

    Runs first in the child, before TensorFlow can be imported (it reads
    ``CUDA_VISIBLE_DEVICES`` when it first looks for devices).
    """
    os.setpgid(0, 0)
    os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when the child ends
    # tqdm would share its bars' lock across processes through a semaphore, which a killed
    # child leaves behind; nothing here shares bars with another process.
    tqdm.set_lock(threading.RLock())


def _child_main(conn, path, memory_limit):
    """The child: limit itself, load the model, then predict each request until told to stop.

    Every failure, even one while a request is unpickled, becomes one error message to
    the parent; the child then exits at once, without interpreter clean-up that could
    fail again (and print tracebacks) under the memory limit.
    """
    where, what = printable(path), "load"
    # Made before the limit applies: an error built under it may not find the memory.
    out_of_memory = {step: _ERROR + (f"{where}: the model's {step} needed more than its memory limit of "
                                     f"{describe_size(memory_limit)} (raise it with --memory-limit)").encode()
                     for step in ("load", "prediction")}
    try:
        limit_this_process(memory_limit)
        import kit.models

        model = kit.models.load(path)
        conn.send_bytes(_READY + (_GIVES_STD if gives_std(model) else b""))
        what = "prediction"
        while True:
            try:
                request = conn.recv()
            except (EOFError, OSError):
                break
            if request is None:
                break
            spectra, pairs, n_passes = request
            if n_passes is None:
                values = model.predict(spectra, pairs)
            else:
                values = np.concatenate(model.predict(spectra, pairs, return_std=True, n_passes=n_passes))
            conn.send_bytes(_RESULT + np.ascontiguousarray(values, dtype="<f8").tobytes())
            del spectra, pairs, request, values
    except BaseException as exc:  # noqa: BLE001 - whatever a hostile model makes fail is the model's fault
        try:
            if isinstance(exc, MemoryError):
                raise exc
            message = _ERROR + " ".join(_error_text(exc, where, what).split()).encode("utf-8")[:_MAX_MESSAGE - 1]
        except BaseException:  # noqa: BLE001 - no memory left even for the message
            message = out_of_memory[what]
        try:
            conn.send_bytes(message)
        except BaseException:  # noqa: BLE001 - the parent reports the silence
            pass
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:  # noqa: BLE001
                pass
        os._exit(0)


def gives_std(model):
    """Whether ``model.predict`` measures a spread (takes ``return_std``, as the siamese does).

    Examples
    --------
    >>> from kit.models.mean import MeanModel
    >>> gives_std(MeanModel())
    False
    """
    try:
        return "return_std" in inspect.signature(model.predict).parameters
    except (TypeError, ValueError):  # no signature to read: no spread either
        return False


def _error_text(exc, where, what):
    """The one line the parent shows for the child's failure ``exc`` during its ``what``."""
    limit = describe_size(resource.getrlimit(resource.RLIMIT_AS)[0])
    if isinstance(exc, UserError):
        text = str(exc)
    elif isinstance(exc, RecursionError):
        text = f"{where}: the model's {what} recursed too deeply: a forged or damaged model"
    else:
        text = f"{where}: the model's {what} failed ({type(exc).__name__}: {first_line(exc)})"
    # The loader's "failed to map segment": a shared library (TensorFlow's, 1 GB) that does
    # not fit the address space left, however far the peak stayed from the limit.
    if _near_memory_limit() or (isinstance(exc, ImportError) and "failed to map segment" in str(exc)):
        # Libraries turn a failed allocation into errors of their own (Keras: "could not be loaded").
        text += f" (the model's process reached its memory limit of {limit}: raise it with --memory-limit)"
    return text


def _near_memory_limit(share=0.9):
    """Whether this process's peak address space came within ``share`` of its limit (Linux; else False)."""
    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            peak = next(int(line.split()[1]) * 1024 for line in handle if line.startswith("VmPeak:"))
    except (OSError, StopIteration, ValueError, IndexError):
        return False
    return limit != resource.RLIM_INFINITY and peak >= share * limit
