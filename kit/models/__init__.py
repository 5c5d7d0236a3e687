"""The baseline ladder, registered by name: ``mean``, ``cosine``, ``gbm``, ``siamese``, ``blend``.

Examples
--------
>>> import kit.models
>>> kit.models.available()
['mean', 'cosine', 'gbm', 'siamese', 'blend']
>>> model = kit.models.get("mean")()   # doctest: +SKIP
"""
from importlib import import_module
from pathlib import Path

from kit.errors import UserError

# name -> "module:Class"; modules import lazily (the siamese pulls in TensorFlow).
REGISTRY = {
    "mean": "kit.models.mean:MeanModel",
    "cosine": "kit.models.cosine:CosineModel",
    "gbm": "kit.models.gbm:GBMModel",
    "siamese": "kit.models.siamese:SiameseModel",
    "blend": "kit.models.blend:BlendModel",
}
#: name -> how the rung saves its fitted state (each class's ``save_format``; a test keeps
#: them equal), so a manifest is checked without importing TensorFlow for the siamese.
SAVE_FORMATS = {"mean": "skops", "cosine": "skops", "gbm": "skops", "siamese": "keras", "blend": "skops+keras"}


def available():
    """Names of the registered models, from the simplest rung up."""
    return list(REGISTRY)


def get(name):
    """The model class registered under ``name``.

    Raises
    ------
    UserError
        For an unknown name, listing the known ones.
    """
    check_name(name)
    module, cls = REGISTRY[name].split(":")
    return getattr(import_module(module), cls)


def check_name(name):
    """``name`` when it is a registered rung; the UserError of :func:`get` otherwise (imports nothing)."""
    if not isinstance(name, str) or name not in REGISTRY:
        from kit.safetext import printable

        raise UserError(f"unknown model {printable(repr(name), 80)}: expected one of {', '.join(REGISTRY)}")
    return name


def load(path, untrusted=False, memory_limit=None, time_limit=None):
    """Load a model saved with ``model.save(path)`` or written by ``kit train``.

    A model folder is untrusted input: loading one never runs code from it
    (:mod:`kit.models.untrusted`). With ``untrusted=True``, which ``kit predict`` always
    uses (as should anything that runs a model folder it did not just train), the model is
    also loaded and run in a child process with no GPU, a memory limit and a time limit
    (:mod:`kit.models.sandbox`); the folder is checked here first.

    Parameters
    ----------
    path : str or Path
    untrusted : bool, default False
        Return a :class:`~kit.models.sandbox.SandboxedModel`: call ``.predict(spectra,
        pairs)`` on it as on any rung, and ``.close()`` (or use ``with``) when done.
    memory_limit : int, optional
        Bytes the child may map (default 4 GiB); only with ``untrusted=True``.
    time_limit : float, optional
        Seconds the child may take to load, and again for each prediction (default 600).

    Raises
    ------
    UserError
        When the folder is not a saved model, was made by another major kit version,
        names files outside itself, holds a damaged, oversized or forged model file, or
        for other binning settings than the model's; with ``untrusted=True`` also when
        the child runs out of memory or time, or dies.

    Examples
    --------
    >>> with load("models/friend-gbm", untrusted=True) as model:   # doctest: +SKIP
    ...     predictions = model.predict(test_spectra, test_pairs)
    """
    if untrusted:
        from kit.models.sandbox import DEFAULT_MEMORY_LIMIT, DEFAULT_TIME_LIMIT, SandboxedModel

        return SandboxedModel(path, memory_limit=DEFAULT_MEMORY_LIMIT if memory_limit is None else memory_limit,
                              time_limit=DEFAULT_TIME_LIMIT if time_limit is None else time_limit)
    if memory_limit is not None or time_limit is not None:
        raise TypeError("memory_limit and time_limit apply only with untrusted=True (a child process)")
    from kit.models.base import read_manifest

    path = Path(path)
    manifest = read_manifest(path)
    cls = get(manifest["model"])
    return cls._load_state(path, manifest)


def check_folder(path):
    """Check a saved model folder without running any of it; return its manifest.

    The manifest, and every file this process can read without building a network
    (the skops files: types, then the arrays inside them), are checked as
    :func:`load` would; the rest is left to the child process of an untrusted load.

    Raises
    ------
    UserError
        As :func:`load`.
    """
    from kit.models.base import read_manifest

    path = Path(path)
    manifest = read_manifest(path)
    name = manifest["model"]
    if "skops" in SAVE_FORMATS[name]:  # the siamese's class alone would import TensorFlow
        get(name)._check_folder(path, manifest)
    return manifest
