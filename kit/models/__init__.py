"""The baseline ladder, registered by name: ``mean``, ``cosine``, ``gbm``, ``siamese``, ``blend``.

Examples
--------
>>> import kit.models
>>> kit.models.available()
['mean', 'cosine', 'gbm', 'siamese', 'blend']
>>> model = kit.models.get("mean")()   # doctest: +SKIP
"""
import ast
import inspect
import os
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING

from kit.errors import UserError

if TYPE_CHECKING:  # the rungs import scikit-learn, the siamese TensorFlow: not for a name in a hint
    from kit.models.base import PairModel
    from kit.models.sandbox import SandboxedModel

# name -> "module:Class"; modules import lazily (the siamese pulls in TensorFlow).
REGISTRY = {
    "mean": "kit.models.mean:MeanModel",
    "cosine": "kit.models.cosine:CosineModel",
    "gbm": "kit.models.gbm:GBMModel",
    "siamese": "kit.models.siamese.estimator:SiameseModel",
    "blend": "kit.models.blend:BlendModel",
}
#: name -> how the rung saves its fitted state (each class's ``save_format``; a test keeps
#: them equal), so a manifest is checked without importing TensorFlow for the siamese.
SAVE_FORMATS = {"mean": "skops", "cosine": "skops", "gbm": "skops", "siamese": "keras", "blend": "skops+keras"}


def available() -> list[str]:
    """Names of the registered models, from the simplest rung up."""
    return list(REGISTRY)


def get(name: str) -> type["PairModel"]:
    """The model class registered under ``name``.

    Raises
    ------
    UserError
        For an unknown name, listing the known ones.
    """
    module, cls = _registered(name)
    return getattr(import_module(module), cls)


def check_name(name: str) -> str:
    """``name`` when it is a registered rung; the UserError of :func:`get` otherwise (imports nothing)."""
    _registered(name)
    return name


def _registered(name):
    """``(module, class name)`` registered under ``name``; an unknown name is refused."""
    if not isinstance(name, str) or name not in REGISTRY:
        from kit.safetext import printable

        raise UserError(f"unknown model {printable(repr(name), 80)}: expected one of {', '.join(REGISTRY)}")
    module, cls = REGISTRY[name].split(":")
    return module, cls


def described(name):
    """A stand-in for the class registered under ``name``, for help: no module is run.

    ``kit train MODEL --help`` only needs a rung's docstring and its ``__init__``
    defaults, and importing the siamese rung alone takes seconds (TensorFlow). Both are
    read from the module's source with :mod:`ast`: defaults that are literals, or
    constants assigned or imported at the top of a kit module (``binning.BIN_WIDTH``).
    The stand-in has the class's ``__module__``, ``__name__``, docstrings, ``__init__``
    signature and a ``get_params`` giving the defaults, which is all
    :func:`kit.models.training.rung_options` reads. Where the source says more than that (a
    computed default, an inherited ``__init__``), the class itself is imported.

    Examples
    --------
    >>> cls = described("siamese")
    >>> cls.__name__, cls().get_params()["epochs"]
    ('SiameseModel', 30)
    """
    module, cls_name = _registered(name)
    try:
        node = _class_node(module, cls_name)
        init = next(n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
        parameters = _parameters(module, init.args)
    except (_NotLiteral, StopIteration, OSError, SyntaxError):
        return get(name)
    return _stand_in(module, cls_name, ast.get_docstring(node, clean=False), ast.get_docstring(init, clean=False),
                     parameters)


class _NotLiteral(Exception):
    """A value the source alone does not give."""


def _module_tree(module):
    """The parsed source of a kit module, found without importing it or its package.

    ``importlib.util.find_spec("kit.models.siamese.estimator")`` would import the
    ``kit.models.siamese`` package, which imports TensorFlow.
    """
    if not module.startswith("kit."):
        raise OSError(f"{module} is not a kit module")
    base = Path(__file__).resolve().parents[1].joinpath(*module.split(".")[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return ast.parse(path.read_text(encoding="utf-8"))
    raise OSError(f"no source for {module}")


def _class_node(module, cls_name):
    return next(n for n in _module_tree(module).body if isinstance(n, ast.ClassDef) and n.name == cls_name)


def _parameters(module, args):
    """``inspect.Parameter``s of an ``__init__``'s keyword arguments with their literal defaults."""
    if args.vararg or args.kwarg or args.posonlyargs or len(args.args) - 1 != len(args.defaults):
        raise _NotLiteral("every argument after self needs a default")
    pairs = list(zip(args.args[1:], args.defaults)) + list(zip(args.kwonlyargs, args.kw_defaults))
    kinds = [inspect.Parameter.POSITIONAL_OR_KEYWORD] * len(args.defaults) + [inspect.Parameter.KEYWORD_ONLY] * len(
        args.kwonlyargs)
    return [inspect.Parameter(arg.arg, kind, default=_value(module, default))
            for (arg, default), kind in zip(pairs, kinds)]


def _value(module, node, depth=0):
    """The value of a default: a literal, or a kit module's constant (followed through its imports)."""
    if node is None:
        raise _NotLiteral("a keyword-only argument without a default")
    try:
        return ast.literal_eval(node)
    except ValueError:
        pass
    if depth > 4:
        raise _NotLiteral("too many imports to follow")
    if isinstance(node, ast.Name):
        return _constant(module, node.id, depth)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        target = _imported(module, node.value.id)
        if target is not None:
            return _constant(target, node.attr, depth + 1)
    raise _NotLiteral(ast.dump(node))


def _imported(module, alias):
    """The kit module that ``alias`` names in ``module`` (``from kit.data import binning``), or None."""
    for node in _module_tree(module).body:
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for item in node.names:
                if (item.asname or item.name) == alias and f"{node.module}.{item.name}".startswith("kit."):
                    return f"{node.module}.{item.name}"
        if isinstance(node, ast.Import):
            for item in node.names:
                if (item.asname or item.name) == alias and item.name.startswith("kit."):
                    return item.name
    return None


def _constant(module, name, depth):
    """A top-level constant of a kit module, assigned a literal there or imported from another kit module."""
    if not module.startswith("kit."):
        raise _NotLiteral(f"{module} is not a kit module")
    for node in _module_tree(module).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return _value(module, node.value, depth + 1)
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
            return _value(module, node.value, depth + 1)
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for item in node.names:
                if (item.asname or item.name) == name:
                    return _constant(node.module, item.name, depth + 1)
    raise _NotLiteral(f"no constant {name} in {module}")


def _stand_in(module, cls_name, doc, init_doc, parameters):
    """A class with the given docstrings and ``__init__`` signature, whose ``get_params`` gives the defaults."""
    defaults = {p.name: p.default for p in parameters}

    def __init__(self, **params):
        self._params = {**defaults, **params}

    __init__.__doc__ = init_doc
    __init__.__signature__ = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)] + parameters)
    return type(cls_name, (), {
        "__module__": module, "__doc__": doc, "__init__": __init__,
        "get_params": lambda self, deep=True: dict(self._params),
    })


def load(path: str | os.PathLike, untrusted: bool = False, memory_limit: int | None = None,
         time_limit: float | None = None) -> "PairModel | SandboxedModel":
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
        from kit.models.sandbox import (
            DEFAULT_MEMORY_LIMIT,
            DEFAULT_TIME_LIMIT,
            SandboxedModel,
        )

        return SandboxedModel(path, memory_limit=DEFAULT_MEMORY_LIMIT if memory_limit is None else memory_limit,
                              time_limit=DEFAULT_TIME_LIMIT if time_limit is None else time_limit)
    if memory_limit is not None or time_limit is not None:
        raise TypeError("memory_limit and time_limit apply only with untrusted=True (a child process)")
    from kit.models.base import read_manifest

    path = Path(path)
    manifest = read_manifest(path)
    cls = get(manifest["model"])
    return cls._load_state(path, manifest)


def check_folder(path: str | os.PathLike) -> dict:
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
