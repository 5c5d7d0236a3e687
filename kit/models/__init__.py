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
    if not isinstance(name, str) or name not in REGISTRY:
        from kit.safetext import printable

        raise UserError(f"unknown model {printable(repr(name), 80)}: expected one of {', '.join(REGISTRY)}")
    module, cls = REGISTRY[name].split(":")
    return getattr(import_module(module), cls)


def load(path):
    """Load a model saved with ``model.save(path)`` or written by ``kit train``.

    A model folder is untrusted input: loading one never runs code from it
    (:mod:`kit.models.untrusted`).

    Raises
    ------
    UserError
        When the folder is not a saved model, was made by another major kit version,
        names files outside itself, holds a damaged, oversized or forged model file, or
        for other binning settings than the model's.
    """
    from kit.models.base import read_manifest

    path = Path(path)
    manifest = read_manifest(path)
    cls = get(manifest["model"])
    return cls._load_state(path, manifest)
