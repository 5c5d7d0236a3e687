"""Reading a saved model folder as untrusted input.

A model folder may come from anyone (a classmate, a download, a hand edit), so loading
one must never run code, read outside the folder, or exhaust memory or disk. Everything
here turns a bad folder into one :class:`~kit.errors.UserError` line:

- the manifest is a bounded JSON object whose fields have the types the kit writes;
- every path it names is a plain relative name that stays inside the folder (no
  absolute path, no ``..``, no symbolic link leading out);
- a model file is a zip whose declared sizes, entry count and compression ratios are
  checked before a byte is unpacked (a zip bomb is refused, not inflated);
- a skops file may only hold the exact types the rung itself saves
  (:data:`SKOPS_TYPES`, pinned from ``skops.io.get_untrusted_types`` on files the rungs
  write), on top of skops' own audited defaults;
- a siamese network is never read from its folder's Keras config: the rung rebuilds it
  from its checked parameters and reads weights only, from an HDF5 file whose dataset
  shapes and types are read first (:func:`weight_shapes`); an older save's ``.keras`` zip
  gives up its weights file alone (:func:`extract_member`).
"""
import json
import math
import os
import zipfile
import zlib
from pathlib import Path, PurePosixPath, PureWindowsPath

import h5py
import numpy as np
import skops.io as sio
from sklearn._loss.link import IdentityLink
from sklearn._loss.loss import HalfSquaredError
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.ensemble._hist_gradient_boosting.binning import _BinMapper
from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE
from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
from sklearn.isotonic import IsotonicRegression

from kit.errors import UserError, first_line
from kit.safetext import printable

#: Most bytes read from a manifest; the kit writes a few KiB (a little more per epoch).
MAX_MANIFEST_BYTES = 1 << 20
#: Most bytes a model file may hold or unpack to (a 10,000-unit siamese is about 0.5 GB).
MAX_UNPACKED_BYTES = 2 << 30
#: Most entries in a model file (a 500-iteration gbm writes about 2,000).
MAX_ENTRIES = 100_000
#: Largest unpacked/packed ratio of a compressed entry over 1 MiB. The kit stores model
#: files uncompressed; weights and trees deflate by 2x at most, a zip bomb by 1,000x.
MAX_RATIO = 50
_RATIO_FROM = 1 << 20
#: Most bytes of skops' schema, parsed whole into memory (about 4 KB per boosting
#: iteration, so some 15,000 iterations).
MAX_JSON_MEMBER_BYTES = {"schema.json": 64 << 20}
_NESTING = 64

#: Types a rung's skops file may hold beyond skops' audited defaults, by rung name:
#: exactly what ``skops.io.get_untrusted_types`` reports on files the rungs write
#: (tests/test_models_untrusted.py checks the list against fresh saves).
SKOPS_TYPES = {
    "mean": ("kit.models.mean.MeanModel",),
    "cosine": ("kit.models.cosine.CosineModel",),
    "gbm": ("kit.models.gbm.GBMModel", "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"),
    # The blend's skops file holds its booster only; its siamese is saved beside it.
    "blend": ("kit.models.blend.BlendModel", "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"),
}

_KINDS = {
    "str": (str,),
    "int": (int,),
    "number": (int, float),
    "dict": (dict,),
    "list": (list,),
    "bool": (bool,),
    "null": (type(None),),
}


# --- the manifest --------------------------------------------------------------------


def read_json_object(file, what="manifest"):
    """The JSON object in ``file``, read with a size cap; a UserError for anything else.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.json"
    >>> _ = p.write_text('{"model": "mean"}')
    >>> read_json_object(p)
    {'model': 'mean'}
    """
    file = Path(file)
    try:
        with open(file, "rb") as handle:
            data = handle.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise UserError(f"{printable(file)}: cannot read the {what} ({exc.strerror or exc})") from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise UserError(
            f"{printable(file)}: the {what} is larger than {MAX_MANIFEST_BYTES:,} bytes: "
            "expected the small JSON file the kit writes"
        )
    try:
        value = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise UserError(f"{printable(file)}: the {what} is not UTF-8 text: expected JSON") from None
    except ValueError as exc:
        raise UserError(f"{printable(file)}: the {what} is not valid JSON ({printable(exc, 120)})") from None
    except RecursionError:
        raise UserError(f"{printable(file)}: the {what} is nested too deeply: expected a flat JSON object") from None
    if not isinstance(value, dict):
        raise UserError(f"{printable(file)}: expected the {what} to be a JSON object, found a JSON {_json_kind(value)}")
    return value


def check_fields(manifest, spec, where):
    """Raise a UserError when a field of ``manifest`` has another type than ``spec`` allows.

    ``spec`` maps a field to allowed kinds, ``"str|null"`` style (str, int, number, dict,
    list, bool, null); a kind ending in ``!`` marks a required field. Numbers must be finite.

    Examples
    --------
    >>> check_fields({"model": "mean", "seed": 0}, {"model": "str!", "seed": "int|null"}, "m")
    >>> check_fields({"model": ["mean"]}, {"model": "str!"}, "m")
    Traceback (most recent call last):
    ...
    kit.errors.UserError: m: manifest field 'model' must be a string, found a JSON array
    """
    for key, kinds in spec.items():
        required = kinds.endswith("!")
        names = kinds.rstrip("!").split("|")
        if key not in manifest:
            if required:
                raise UserError(f"{where}: the manifest has no {key!r} field: expected a model saved by the kit")
            continue
        value = manifest[key]
        if not any(_is_kind(value, name) for name in names):
            wanted = " or ".join(_KIND_TEXT[name] for name in names)
            raise UserError(f"{where}: manifest field {key!r} must be {wanted}, found a JSON {_json_kind(value)}")


_KIND_TEXT = {"str": "a string", "int": "an integer", "number": "a finite number", "dict": "an object",
              "list": "an array", "bool": "true or false", "null": "null"}


def _is_kind(value, name):
    if name in ("int", "number") and isinstance(value, bool):
        return False
    if not isinstance(value, _KINDS[name]):
        return False
    return name != "number" or math.isfinite(value)


def _json_kind(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


def plain_name(value, what, where):
    """``value`` when it is a name with no path in it (a competition name); else UserError."""
    if not isinstance(value, str) or not value or value in (".", "..") or any(c in value for c in "/\\\x00"):
        raise UserError(f"{where}: manifest field {what!r} must be a plain name, found {printable(repr(value), 80)}")
    return value


# --- files inside the folder ---------------------------------------------------------


def file_inside(folder, name, what="file"):
    """``folder / name`` when ``name`` is a relative path that stays inside ``folder``.

    Refused with a UserError: absolute paths, drive letters, ``..`` parts, NUL bytes,
    symbolic links that lead out of the folder, and anything that is not a regular file.

    Examples
    --------
    >>> file_inside("models/x", "/etc/passwd")          # doctest: +SKIP
    Traceback (most recent call last):
    kit.errors.UserError: models/x: manifest file '/etc/passwd' must be a file name inside the model folder ...
    """
    folder = Path(folder)
    shown = printable(repr(name), 120)
    if not isinstance(name, str) or not name or "\x00" in name:
        raise UserError(f"{printable(folder)}: manifest {what} {shown} must be a file name inside the model folder")
    posix, windows = PurePosixPath(name.replace("\\", "/")), PureWindowsPath(name)
    if posix.is_absolute() or windows.drive or windows.root or ".." in posix.parts:
        raise UserError(
            f"{printable(folder)}: manifest {what} {shown} must be a file name inside the model folder "
            "(no absolute path, no '..')"
        )
    path = folder / posix
    real, root = Path(os.path.realpath(path)), Path(os.path.realpath(folder))
    if real != root and root not in real.parents:
        raise UserError(f"{printable(path)} leads outside the model folder (a symbolic link): refusing to read it")
    if not real.exists():
        raise UserError(f"{printable(folder)}: expected the model's {what} {shown}, found no such file")
    if not real.is_file():
        raise UserError(f"{printable(path)} is not a regular file: expected the model's {what}")
    return path


# --- zip archives --------------------------------------------------------------------


def check_archive(file, what):
    """Refuse a model file that is not a sound zip of bounded size, before unpacking it.

    Checks the size on disk, the entry count (from the end record, before the entry
    list is read), then each entry's declared size, compression method, ratio and name.

    Raises
    ------
    UserError
        Naming the file and what is wrong with it.
    """
    file = Path(file)
    where = printable(file)
    size = file.stat().st_size
    if size > MAX_UNPACKED_BYTES:
        raise UserError(f"{where}: {size:,} bytes is too large for a {what} (at most {MAX_UNPACKED_BYTES:,})")
    try:
        with open(file, "rb") as handle:
            end = zipfile._EndRecData(handle)  # the end record alone: no entry list in memory yet
        if end is None:
            raise zipfile.BadZipFile("no end-of-archive record (truncated, or not a zip)")
        if end[zipfile._ECD_ENTRIES_TOTAL] > MAX_ENTRIES:
            raise UserError(f"{where}: {end[zipfile._ECD_ENTRIES_TOTAL]:,} entries is too many for a {what}")
        with zipfile.ZipFile(file) as archive:
            infos = archive.infolist()
    except UserError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, IndexError, OverflowError,
            NotImplementedError) as exc:
        raise UserError(f"{where}: not a readable {what} (a damaged or truncated zip: {printable(exc, 120)})") from None
    if len(infos) > MAX_ENTRIES:
        raise UserError(f"{where}: {len(infos):,} entries is too many for a {what}")
    total = 0
    for info in infos:
        name = printable(repr(info.filename), 80)
        if info.flag_bits & 0x1:
            raise UserError(f"{where}: entry {name} is encrypted: expected a plain {what}")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise UserError(f"{where}: entry {name} uses compression method {info.compress_type}: expected stored or deflated")
        posix = PurePosixPath(info.filename)
        if posix.is_absolute() or ".." in posix.parts or "\x00" in info.filename:
            raise UserError(f"{where}: entry {name} has a path outside the archive")
        limit = MAX_JSON_MEMBER_BYTES.get(info.filename)
        if limit is not None and info.file_size > limit:
            raise UserError(f"{where}: entry {name} unpacks to {info.file_size:,} bytes, more than the {limit:,} expected")
        total += info.file_size
        if total > MAX_UNPACKED_BYTES:
            raise UserError(
                f"{where}: unpacks to more than {MAX_UNPACKED_BYTES:,} bytes (a zip bomb?): refusing to read the {what}"
            )
        if info.file_size > _RATIO_FROM and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise UserError(
                f"{where}: entry {name} unpacks {info.file_size / max(info.compress_size, 1):,.0f} times larger than "
                f"it is stored (a zip bomb?): refusing to read the {what}"
            )


# --- skops ---------------------------------------------------------------------------


def load_skops(file, cls):
    """Load a scikit-learn rung saved with skops, trusting only the types that rung saves.

    ``cls.name`` picks the allowed types from :data:`SKOPS_TYPES`; the loaded object must
    be a fitted ``cls``. Nothing in the file can run code: skops builds objects from
    audited types only and never unpickles.
    """
    where = printable(file)
    check_archive(file, f"{cls.name} model (skops)")
    allowed = SKOPS_TYPES.get(cls.name, ())
    try:
        untrusted = sio.get_untrusted_types(file=file)
    except RecursionError:
        raise UserError(f"{where}: the skops schema is nested too deeply: not a model the kit saved") from None
    except Exception as exc:  # noqa: BLE001 - any failure to parse a hostile file is the file's fault
        raise UserError(f"{where}: not a readable skops model ({type(exc).__name__}: {printable(exc, 120)})") from None
    unexpected = sorted(set(untrusted) - set(allowed))
    if unexpected:
        shown = ", ".join(printable(t, 80) for t in unexpected[:5])
        raise UserError(
            f"{where}: refusing to load types a {cls.name} model does not save: {shown}"
            + (f" and {len(unexpected) - 5} more" if len(unexpected) > 5 else "")
        )
    try:
        model = sio.load(file, trusted=list(allowed))
    except Exception as exc:  # noqa: BLE001 - as above: a damaged or forged file, not a kit bug
        raise UserError(f"{where}: not a readable skops model ({type(exc).__name__}: {printable(exc, 120)})") from None
    if type(model) is not cls:
        raise UserError(f"{where}: holds a {type(model).__name__}, expected a {cls.name} model ({cls.__name__})")
    model.check_loaded_state(where)
    return model


# --- HDF5 weights files ---------------------------------------------------------------


def extract_member(file, member, target, max_bytes, what):
    """Copy one entry of a checked zip to ``target``, at most ``max_bytes`` of it.

    The archive is checked first (:func:`check_archive`: sizes, entry count, ratios, so a
    zip bomb is refused before a byte is inflated); the entry's name is never used as a
    path, and the copy stops past ``max_bytes`` whatever the entry declares.

    Examples
    --------
    >>> extract_member("old/model.keras", "model.weights.h5", tmp / "w.weights.h5", 1 << 30, "network")  # doctest: +SKIP
    """
    where = printable(file)
    check_archive(file, what)
    try:
        with zipfile.ZipFile(file) as archive:
            try:
                info = archive.getinfo(member)
            except KeyError:
                raise UserError(f"{where}: no {member} inside: not a {what}") from None
            if info.file_size > max_bytes:
                raise UserError(f"{where}: entry {member!r} unpacks to {info.file_size:,} bytes, more than the "
                                f"{max_bytes:,} its network can need: refusing to read the {what}")
            copied = 0
            with archive.open(info) as source, open(target, "xb") as sink:
                while chunk := source.read(1 << 20):
                    copied += len(chunk)
                    if copied > max_bytes:
                        raise UserError(f"{where}: entry {member!r} unpacks to more than {max_bytes:,} bytes: "
                                        f"refusing to read the {what}")
                    sink.write(chunk)
    except UserError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error, NotImplementedError) as exc:
        raise UserError(f"{where}: not a readable {what} (a damaged or truncated zip: {printable(exc, 120)})") from None
    return Path(target)


def weight_shapes(file, max_elements, what="weights file", unread=(), where=None):
    """``{dataset path: shape}`` of an HDF5 weights file, from its metadata alone.

    Nothing but shapes and types is read, so a file that declares terabytes costs
    nothing. Refused with a UserError: a file that is not HDF5, links (soft or external:
    Keras writes neither), virtual datasets or datasets stored in other files, types
    other than float32, more than :data:`MAX_H5_OBJECTS` objects, and datasets of more
    than ``max_elements`` values in all. Top-level groups in ``unread`` (the optimiser
    state an older save kept) are bounded the same way and left out of the result.
    ``where`` names the file in messages (default: its path).

    Examples
    --------
    >>> weight_shapes("models/s/model.weights.h5", 5_000_000)["vars/0"]      # doctest: +SKIP
    (9902, 500)
    """
    where = where or printable(file)
    # float32 values (and an optimiser's two moments for each in ``unread``), plus HDF5's bookkeeping.
    most = 4 * max_elements * (3 if unread else 1) + (16 << 20)
    size = Path(file).stat().st_size
    if size > most:
        raise UserError(f"{where}: {size:,} bytes is more than the {most:,} a {what} of {max_elements:,} values takes")
    try:
        handle = h5py.File(file, "r")
    except (OSError, ValueError) as exc:
        raise UserError(f"{where}: not an HDF5 {what} ({printable(first_line(exc), 120)})") from None
    shapes, totals, seen = {}, {True: 0, False: 0}, [0]
    try:
        with handle:
            _walk_h5(handle, "", shapes, totals, seen, max_elements, unread, where)
    except UserError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
        raise UserError(f"{where}: not a readable {what} ({printable(first_line(exc), 120)})") from None
    if totals[False] > max_elements or totals[True] > 2 * max_elements + 64:
        raise UserError(f"{where}: declares {totals[False] + totals[True]:,} values, more than the {max_elements:,} "
                        f"its network holds: refusing to read the {what}")
    return shapes


#: Most groups and datasets walked in a weights file (a siamese writes a few dozen).
MAX_H5_OBJECTS = 10_000


def _walk_h5(group, prefix, shapes, totals, seen, max_elements, unread, where):
    for name in group:
        path = f"{prefix}{name}"
        seen[0] += 1
        if seen[0] > MAX_H5_OBJECTS or path.count("/") > _NESTING:
            raise UserError(f"{where}: more than {MAX_H5_OBJECTS:,} objects, or nested too deeply: not a weights "
                            "file the kit writes")
        link = group.get(name, getlink=True)
        if not isinstance(link, h5py.HardLink):
            raise UserError(f"{where}: {printable(repr(path), 80)} is a {type(link).__name__}: a weights file the "
                            "kit writes holds no links")
        node = group[name]
        skipped = path.split("/")[0] in unread
        if isinstance(node, h5py.Group):
            _walk_h5(node, path + "/", shapes, totals, seen, max_elements, unread, where)
            continue
        if not isinstance(node, h5py.Dataset):
            raise UserError(f"{where}: {printable(repr(path), 80)} is not a dataset or a group")
        if node.is_virtual or node.external:
            raise UserError(f"{where}: dataset {printable(repr(path), 80)} is stored in other files: refusing it")
        # Keras reads a dataset's attributes (a "dtype" one) whole, and writes none for float32.
        if len(node.attrs):
            raise UserError(f"{where}: dataset {printable(repr(path), 80)} carries attributes: a weights file the "
                            "kit writes has none")
        if node.shape is None or (node.dtype != "float32" and not skipped):
            raise UserError(f"{where}: dataset {printable(repr(path), 80)} holds {node.dtype}{node.shape or ''}: "
                            "expected float32 weights")
        size = math.prod(node.shape)
        totals[skipped] += size
        if size > max_elements:
            raise UserError(f"{where}: dataset {printable(repr(path), 80)} declares {size:,} values, more than the "
                            f"{max_elements:,} its network holds")
        if not skipped:
            shapes[path] = tuple(int(n) for n in node.shape)


# --- the numbers inside allowed types ------------------------------------------------
#
# skops guarantees a file holds only allowed types; it says nothing about the numbers in
# them. scikit-learn's compiled predictors trust their arrays (a tree node pointing to
# itself loops for ever, a feature index past the end reads stray memory), so every
# array a prediction reads is checked here, on load, before any prediction.

#: Most boosting iterations a saved tree ensemble may hold (the rungs stop at 500 by default).
MAX_TREES = 20_000
#: Most nodes in one tree (``max_leaf_nodes`` leaves make ``2 * max_leaf_nodes - 1`` nodes).
MAX_TREE_NODES = 1 << 17
#: Most bins per feature of a histogram booster (scikit-learn allows 255 plus one for missing values).
MAX_BINS = 256
#: Most thresholds of a saved isotonic calibration (one per distinct training score at most).
MAX_ISOTONIC_POINTS = 1_000_000
#: Most molecule keys a saved blend may record.
MAX_MOLECULES = 10_000_000

#: Fitted attributes a saved ``HistGradientBoostingRegressor`` holds (its parameters aside).
HGB_FITTED = frozenset({
    "_baseline_prediction", "_bin_mapper", "_feature_subsample_rng", "_is_categorical_remapped", "_loss",
    "_n_features", "_predictors", "_preprocessor", "_random_seed", "_scorer", "_use_validation_data",
    "do_early_stopping_", "feature_names_in_", "is_categorical_", "n_features_in_", "n_trees_per_iteration_",
    "train_score_", "validation_score_",
})
#: Attributes of a saved ``_BinMapper``.
BIN_MAPPER_FIELDS = frozenset({
    "bin_thresholds_", "is_categorical", "is_categorical_", "known_categories", "missing_values_bin_idx_",
    "n_bins", "n_bins_non_missing_", "n_threads", "random_state", "subsample",
})


def refuse(where, what, found):
    """Raise the one-line UserError for a saved model whose ``what`` is not what the kit writes."""
    raise UserError(f"{where}: {what}, found {printable(found, 120)}: not a model the kit saved (a forged or damaged file)")


def check_attributes(obj, allowed, where, what):
    """Refuse an object carrying attributes outside ``allowed`` (a forged file can set any)."""
    extra = sorted(set(vars(obj)) - set(allowed))
    if extra:
        refuse(where, f"{what} has attributes the kit never saves", ", ".join(map(repr, extra[:5])))


def check_array(value, what, where, kind="f", ndim=1, shape=None, max_size=None, finite=True, bounds=None):
    """``value`` when it is a plain numeric ndarray of the given kind, shape and range; else UserError.

    ``kind`` is a numpy ``dtype.kind`` string (``"f"``, ``"iu"``, ``"U"``); ``shape`` may
    hold None for a free dimension; ``bounds`` is an inclusive ``(low, high)``.

    Examples
    --------
    >>> check_array(np.array([0.5]), "constant_", "m", bounds=(0.0, 1.0))
    array([0.5])
    >>> check_array(np.array([np.nan]), "constant_", "m")
    Traceback (most recent call last):
    ...
    kit.errors.UserError: m: constant_ must hold finite numbers, found nan: not a model the kit saved (a forged or damaged file)
    """
    if type(value) is not np.ndarray:
        refuse(where, f"{what} must be a numpy array", type(value).__name__)
    if value.dtype.kind not in kind or value.dtype.hasobject or value.dtype.names is not None:
        refuse(where, f"{what} must be an array of {_DTYPE_TEXT.get(kind, kind)}", f"dtype {value.dtype}")
    if value.ndim != ndim or (shape is not None and any(s is not None and s != n for s, n in zip(shape, value.shape))):
        expected = "x".join("n" if s is None else str(s) for s in shape) if shape else f"{ndim} dimension(s)"
        refuse(where, f"{what} must have shape {expected}", f"shape {value.shape}")
    if max_size is not None and value.size > max_size:
        refuse(where, f"{what} may hold at most {max_size:,} values", f"{value.size:,}")
    if value.dtype.kind == "f" and finite and not np.isfinite(value).all():
        refuse(where, f"{what} must hold finite numbers", value[~np.isfinite(value)].ravel()[0])
    if bounds is not None and value.size and (value.min() < bounds[0] or value.max() > bounds[1]):
        bad = value[(value < bounds[0]) | (value > bounds[1])].ravel()[0]
        refuse(where, f"{what} must lie in [{bounds[0]}, {bounds[1]}]", bad)
    return value


_DTYPE_TEXT = {"f": "floats", "iu": "integers", "u": "unsigned integers", "U": "strings"}


def check_number(value, what, where, low, high, integer=False):
    """``value`` when it is a finite (integer) number in ``[low, high]``; else UserError."""
    types = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, types):
        refuse(where, f"{what} must be {'an integer' if integer else 'a number'}", type(value).__name__)
    if not (math.isfinite(value) and low <= value <= high):
        refuse(where, f"{what} must lie in [{low}, {high}]", repr(value))
    return value


def check_value(value, allowed, what, where):
    """Refuse ``value`` unless it is one of ``allowed`` (compared by type and value)."""
    if not any(type(value) is type(a) and value == a for a in allowed):
        refuse(where, f"{what} must be one of {', '.join(map(repr, allowed))}", repr(value))


def check_tree(nodes, n_features, where):
    """Refuse tree nodes that are not one real tree over ``n_features`` features.

    scikit-learn walks ``nodes`` from the root in compiled code, following ``left`` and
    ``right`` until a node ``is_leaf``. A real tree, as scikit-learn writes it (depth
    first, children after their parent), is what this checks: every child index lies
    after its parent and inside the array, every node but the root has exactly one
    parent (so each is reached once from the root, no cycle, no shared child, no
    orphan), split features are below ``n_features``, split thresholds are not NaN and
    leaf values are finite.

    Examples
    --------
    >>> from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE
    >>> nodes = np.zeros(3, dtype=PREDICTOR_RECORD_DTYPE)
    >>> nodes["left"][0], nodes["right"][0], nodes["is_leaf"][1:] = 1, 2, 1
    >>> check_tree(nodes, 4, "m")
    >>> nodes["left"][0] = 0
    >>> check_tree(nodes, 4, "m")
    Traceback (most recent call last):
    ...
    kit.errors.UserError: m: tree node 0's children must come after it and inside the 3 nodes, found left 0, right
    2: not a model the kit saved (a forged or damaged file)
    """
    if type(nodes) is not np.ndarray or nodes.dtype != PREDICTOR_RECORD_DTYPE:
        refuse(where, "tree nodes must be scikit-learn's node records",
               f"dtype {getattr(nodes, 'dtype', type(nodes).__name__)}")
    if nodes.ndim != 1 or not 1 <= len(nodes) <= MAX_TREE_NODES:
        refuse(where, f"a tree must have 1 to {MAX_TREE_NODES:,} nodes", f"shape {nodes.shape}")
    n = len(nodes)
    flags = {"is_leaf": nodes["is_leaf"], "missing_go_to_left": nodes["missing_go_to_left"]}
    for name, values in flags.items():
        if values.max() > 1:
            refuse(where, f"tree node field {name} must be 0 or 1", int(values.max()))
    if nodes["is_categorical"].any():
        refuse(where, "tree nodes must not split on categories (the rungs have none)", "a categorical split")
    split = np.flatnonzero(nodes["is_leaf"] == 0)
    if (n - len(split)) != len(split) + 1:
        refuse(where, f"a tree of {n} nodes must have {(n + 1) // 2} leaves and {n // 2} splits",
               f"{n - len(split)} leaves")
    left, right = nodes["left"][split].astype(np.int64), nodes["right"][split].astype(np.int64)
    bad = np.flatnonzero((left <= split) | (right <= split) | (left >= n) | (right >= n))
    if len(bad):
        i = bad[0]
        refuse(where, f"tree node {split[i]}'s children must come after it and inside the {n} nodes",
               f"left {left[i]}, right {right[i]}")
    parents = np.bincount(np.concatenate([left, right]), minlength=n)
    if n > 1 and (parents[1:] != 1).any():
        node = 1 + int(np.flatnonzero(parents[1:] != 1)[0])
        refuse(where, "every tree node but the root must have exactly one parent",
               f"node {node} with {parents[node]}")
    features = nodes["feature_idx"][split]
    if len(features) and (features.min() < 0 or features.max() >= n_features):
        bad_feature = features[(features < 0) | (features >= n_features)][0]
        refuse(where, f"split features must be below the {n_features} features", f"feature index {bad_feature}")
    if np.isnan(nodes["num_threshold"][split]).any():
        refuse(where, "split thresholds must be numbers", "NaN")
    if not np.isfinite(nodes["value"]).all():
        refuse(where, "tree node values must be finite", nodes["value"][~np.isfinite(nodes["value"])][0])


def check_hist_gradient_boosting(regressor, feature_names, where):
    """Refuse a ``HistGradientBoostingRegressor`` whose fitted arrays a prediction cannot trust.

    Checks what ``predict`` reads: the squared-error loss, no categorical or preprocessing
    step, ``n_features_in_`` and ``feature_names_in_`` against ``feature_names``, the
    baseline, the binning (thresholds finite, sorted, within :data:`MAX_BINS`) and every
    tree (:func:`check_tree`), at most :data:`MAX_TREES` of them; then the parameters.
    The gbm and the blend share it: both store the same tree type.
    """
    what = "the saved regressor_"
    if type(regressor) is not HistGradientBoostingRegressor:
        refuse(where, f"{what} must be a HistGradientBoostingRegressor", type(regressor).__name__)
    params = regressor.get_params(deep=False)
    check_attributes(regressor, HGB_FITTED | set(params), where, what)
    n_features = len(feature_names)
    check_value(regressor.loss, ["squared_error"], f"{what}'s loss", where)
    loss = getattr(regressor, "_loss", None)
    if type(loss) is not HalfSquaredError or type(getattr(loss, "link", None)) is not IdentityLink:
        refuse(where, f"{what}'s loss must be scikit-learn's squared error", type(loss).__name__)
    for name in ("_preprocessor", "is_categorical_", "_is_categorical_remapped"):
        if getattr(regressor, name, None) is not None:
            refuse(where, f"{what} must have no categorical features ({name})", type(getattr(regressor, name)).__name__)
    check_value(getattr(regressor, "n_trees_per_iteration_", None), [1], f"{what}'s n_trees_per_iteration_", where)
    for name in ("n_features_in_", "_n_features"):
        check_value(getattr(regressor, name, None), [n_features], f"{what}'s {name} (one per feature name)", where)
    # scikit-learn keeps the names as an object array; only plain strings equal to ours pass.
    names_in = getattr(regressor, "feature_names_in_", None)
    if (type(names_in) is not np.ndarray or names_in.shape != (n_features,)
            or not all(type(x) is str for x in names_in) or list(names_in) != list(feature_names)):
        refuse(where, f"{what}'s feature_names_in_ must be the model's {n_features} feature names", "other names")
    check_array(getattr(regressor, "_baseline_prediction", None), f"{what}'s _baseline_prediction", where,
                ndim=2, shape=(1, 1))
    for name in ("train_score_", "validation_score_"):
        check_array(getattr(regressor, name, None), f"{what}'s {name}", where, max_size=MAX_TREES + 1, finite=False)
    _check_bin_mapper(getattr(regressor, "_bin_mapper", None), n_features, where, _BinMapper)
    predictors = getattr(regressor, "_predictors", None)
    if type(predictors) is not list or not 1 <= len(predictors) <= MAX_TREES:
        refuse(where, f"{what} must hold a list of 1 to {MAX_TREES:,} boosting iterations",
               f"{len(predictors):,}" if type(predictors) is list else type(predictors).__name__)
    for iteration, trees in enumerate(predictors):
        if type(trees) is not list or len(trees) != 1 or type(trees[0]) is not TreePredictor:
            refuse(where, f"boosting iteration {iteration} must hold one TreePredictor", type(trees).__name__)
        tree = trees[0]
        check_attributes(tree, {"nodes", "binned_left_cat_bitsets", "raw_left_cat_bitsets"}, where, "a tree")
        for name in ("binned_left_cat_bitsets", "raw_left_cat_bitsets"):
            check_array(getattr(tree, name, None), f"tree {iteration}'s {name}", where, kind="u", ndim=2,
                        shape=(0, 8))
        check_tree(getattr(tree, "nodes", None), n_features, f"{where}: tree {iteration}")
    _check_booster_params(regressor, params, where)


def _check_bin_mapper(mapper, n_features, where, bin_mapper_type):
    what = "the saved regressor_'s binning"
    if type(mapper) is not bin_mapper_type:
        refuse(where, f"{what} must be a _BinMapper", type(mapper).__name__)
    check_attributes(mapper, BIN_MAPPER_FIELDS, where, what)
    n_bins = check_number(getattr(mapper, "n_bins", None), f"{what}'s n_bins", where, 3, MAX_BINS, integer=True)
    check_value(getattr(mapper, "missing_values_bin_idx_", None), [n_bins - 1], f"{what}'s missing_values_bin_idx_",
                where)
    check_array(getattr(mapper, "n_bins_non_missing_", None), f"{what}'s n_bins_non_missing_", where, kind="u",
                shape=(n_features,), bounds=(0, n_bins - 1))
    check_array(getattr(mapper, "is_categorical_", None), f"{what}'s is_categorical_", where, kind="u",
                shape=(n_features,), bounds=(0, 0))
    for name in ("is_categorical", "known_categories"):
        if getattr(mapper, name, None) is not None:
            refuse(where, f"{what} must have no categories ({name})", type(getattr(mapper, name)).__name__)
    thresholds = getattr(mapper, "bin_thresholds_", None)
    if type(thresholds) is not list or len(thresholds) != n_features:
        refuse(where, f"{what} must hold one threshold array per feature ({n_features})", type(thresholds).__name__)
    for feature, values in enumerate(thresholds):
        check_array(values, f"{what}'s thresholds of feature {feature}", where, max_size=n_bins - 1)
        if (np.diff(values) < 0).any():
            refuse(where, f"{what}'s thresholds of feature {feature} must be sorted", "a decrease")


def _check_booster_params(regressor, params, where):
    """The booster's parameters: not read by ``predict``, but a forged file can set them and refit reads them."""
    what = "the saved regressor_'s"
    check_number(params["max_iter"], f"{what} max_iter", where, 1, MAX_TREES, integer=True)
    check_number(params["max_bins"], f"{what} max_bins", where, 2, MAX_BINS - 1, integer=True)
    check_number(params["learning_rate"], f"{what} learning_rate", where, 1e-12, 1e6)
    check_number(params["l2_regularization"], f"{what} l2_regularization", where, 0.0, 1e12)
    if params["max_leaf_nodes"] is not None:
        check_number(params["max_leaf_nodes"], f"{what} max_leaf_nodes", where, 2, MAX_TREE_NODES, integer=True)
    check_number(params["min_samples_leaf"], f"{what} min_samples_leaf", where, 1, 1 << 40, integer=True)


def check_dummy_regressor(regressor, where):
    """Refuse a ``DummyRegressor`` (the mean rung) that is not one mean of one output.

    ``predict`` fills ``(n_samples, n_outputs_)`` from ``constant_``: a forged
    ``n_outputs_`` of 1e8 would allocate gigabytes per pair.
    """
    what = "the saved regressor_"
    if type(regressor) is not DummyRegressor:
        refuse(where, f"{what} must be a DummyRegressor", type(regressor).__name__)
    check_attributes(regressor, {"strategy", "constant", "quantile", "n_features_in_", "n_outputs_", "constant_"},
                     where, what)
    check_value(regressor.strategy, ["mean"], f"{what}'s strategy", where)
    for name in ("constant", "quantile"):
        if getattr(regressor, name, None) is not None:
            refuse(where, f"{what}'s {name} must be None", repr(getattr(regressor, name)))
    check_value(getattr(regressor, "n_features_in_", None), [1], f"{what}'s n_features_in_", where)
    check_value(getattr(regressor, "n_outputs_", None), [1], f"{what}'s n_outputs_", where)
    check_array(getattr(regressor, "constant_", None), f"{what}'s constant_", where, ndim=2, shape=(1, 1),
                bounds=(0.0, 1.0))


def check_isotonic(calibration, where):
    """Refuse an ``IsotonicRegression`` (the cosine rung's map) that is not a bounded, sorted map to [0, 1]."""
    what = "the saved calibration_"
    if type(calibration) is not IsotonicRegression:
        refuse(where, f"{what} must be an IsotonicRegression", type(calibration).__name__)
    check_attributes(calibration, {"y_min", "y_max", "increasing", "out_of_bounds", "increasing_", "X_min_",
                                   "X_max_", "X_thresholds_", "y_thresholds_", "f_", "n_features_in_"}, where, what)
    for name, value in (("y_min", 0.0), ("y_max", 1.0), ("increasing", True), ("increasing_", True),
                        ("out_of_bounds", "clip")):
        check_value(getattr(calibration, name, None), [value], f"{what}'s {name}", where)
    x = check_array(getattr(calibration, "X_thresholds_", None), f"{what}'s X_thresholds_", where,
                    max_size=MAX_ISOTONIC_POINTS)
    y = check_array(getattr(calibration, "y_thresholds_", None), f"{what}'s y_thresholds_", where,
                    shape=(len(x),), bounds=(0.0, 1.0))
    if len(x) < 1 or (np.diff(x) < 0).any() or (np.diff(y) < 0).any():
        refuse(where, f"{what}'s thresholds must be at least one non-decreasing point", f"{len(x)} points")
    for name, value in (("X_min_", x[0]), ("X_max_", x[-1])):
        found = getattr(calibration, name, None)
        check_number(found, f"{what}'s {name}", where, -math.inf, math.inf)
        if found != value:
            refuse(where, f"{what}'s {name} must be its {'first' if name == 'X_min_' else 'last'} threshold",
                   repr(found))
    if hasattr(calibration, "n_features_in_"):
        check_value(calibration.n_features_in_, [1], f"{what}'s n_features_in_", where)
