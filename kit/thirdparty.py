"""Third-party imports that need care, done once and scoped.

matchms imports psims, which warns at import time about an optional HDF5 codec
(``hdf5plugin``) that the kit never uses. The warning is silenced around that one import
only: the program's own warning filters stay as they were.

TensorFlow's C++ libraries print start-up notices straight to file descriptor 2 while
TensorFlow is imported (oneDNN is on, absl's "before InitializeLog" line, CPU instruction
sets, CUDA libraries that a CPU machine lacks), whatever ``TF_CPP_MIN_LOG_LEVEL`` says in
recent releases. :func:`import_tensorflow` holds back those known lines, and only them,
during that one import: anything else printed then (an error, a warning) still reaches
standard error.
"""
import contextlib
import importlib
import os
import sys
import tempfile
import warnings

#: Lines TensorFlow prints while it is imported that say nothing is wrong.
TENSORFLOW_NOTICES = (
    "All log messages before absl::InitializeLog() is called are written to STDERR",
    "oneDNN custom operations are on",
    "This TensorFlow binary is optimized to use available CPU instructions",
    "To enable the following instructions:",
    "Unable to register cuDNN factory",
    "Unable to register cuFFT factory",
    "Unable to register cuBLAS factory",
    "computation placer already registered",
    "Could not find cuda drivers on your machine, GPU will not be used",
    "TF-TRT Warning: Could not find TensorRT",
)


def quiet_import(name):
    """Import module ``name`` without psims's ``hdf5plugin is missing`` warning; return the module.

    matchms and pyteomics' mzML reader import psims; a module that needs them imports
    them through this at its top, and later imports find psims loaded and warn about nothing.

    Examples
    --------
    >>> quiet_import("pyteomics.mzml").__name__
    'pyteomics.mzml'
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="hdf5plugin is missing")
        return importlib.import_module(name)


def import_matchms():
    """Import matchms without psims's ``hdf5plugin is missing`` warning; return the module.

    Examples
    --------
    >>> import_matchms().__name__
    'matchms'
    """
    return quiet_import("matchms")


def import_tensorflow():
    """Import TensorFlow without its start-up notices (:data:`TENSORFLOW_NOTICES`); return the module.

    Call it before the first ``import keras`` or ``import tensorflow`` of a code path.
    Every other line printed during the import is passed on to standard error.

    Examples
    --------
    >>> import_tensorflow().__name__   # doctest: +SKIP
    'tensorflow'
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # Python-side INFO and WARNING logs
    with without_lines(TENSORFLOW_NOTICES):
        import tensorflow
    return tensorflow


@contextlib.contextmanager
def without_lines(notices):
    """Inside the block, lines written to file descriptor 2 that contain one of ``notices`` are dropped.

    C++ libraries write to the descriptor, not to ``sys.stderr``, so the descriptor is
    pointed at a temporary file for the block; the other lines are written to standard
    error afterwards, in order. Where the descriptor cannot be redirected (none is
    open), nothing is held back.

    Examples
    --------
    >>> with without_lines(["chatter"]):
    ...     print("chatter from a library", file=sys.stderr)
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [line for line in held.read().decode("utf-8", "replace").splitlines(keepends=True)
                    if not any(notice in line for notice in notices)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()
