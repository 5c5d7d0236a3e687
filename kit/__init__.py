"""specsim-kit: a competition starter kit for predicting molecular similarity from MS/MS spectra.

The public API is imported lazily so that light commands (``kit score``) start fast and
never pull in TensorFlow.

Examples
--------
>>> import kit
>>> comp = kit.load_competition("data/practice")            # doctest: +SKIP
>>> model = kit.models.get("mean")().fit(comp.train_spectra)  # doctest: +SKIP
"""
from importlib import import_module

from kit._version import __version__
from kit.errors import SubmissionError, UserError

# public name -> module that defines it
_LAZY = {
    "load_spectra": "kit.data.spectra",
    "save_spectra": "kit.data.spectra",
    "load_competition": "kit.competition.folder",
    "Competition": "kit.competition.folder",
    "prepare_competition": "kit.competition.prepare",
    "write_submission": "kit.scoring.writer",
    "score_submission": "kit.scoring.scorer",
    "models": "kit.models",
}

__all__ = ["__version__", "SubmissionError", "UserError", *_LAZY]


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'kit' has no attribute {name!r}")
    module = import_module(_LAZY[name])
    value = module if name == "models" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
