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
- a Keras file may only name the layers, initialisers and optimiser the siamese rung
  saves (:data:`KERAS_CLASSES`) and is then loaded with ``safe_mode=True``, which also
  refuses Lambda layers.
"""
import json
import math
import os
import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath

from kit.errors import UserError
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
#: Most bytes of the JSON parts, parsed whole into memory: skops' schema (about 4 KB per
#: boosting iteration, so some 15,000 iterations) and Keras' config (about 10 KB; Keras
#: holds some 70 times a config's size in memory while reading it).
MAX_JSON_MEMBER_BYTES = {"schema.json": 64 << 20, "config.json": 1 << 20, "metadata.json": 1 << 20}
_NESTING = 64
#: Widest layer a siamese config may name. Keras builds every layer's weights from the
#: config before it reads them, so a forged width would allocate gigabytes first.
MAX_KERAS_UNITS = 65_536

#: Types a rung's skops file may hold beyond skops' audited defaults, by rung name:
#: exactly what ``skops.io.get_untrusted_types`` reports on files the rungs write
#: (tests/test_models_untrusted.py checks the list against fresh saves).
SKOPS_TYPES = {
    "mean": ("kit.models.mean.MeanModel",),
    "cosine": ("kit.models.cosine.CosineModel",),
    "gbm": ("kit.models.gbm.GBMModel", "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"),
    # The blend's skops file holds its booster only; its siamese is a Keras file beside it.
    "blend": ("kit.models.blend.BlendModel", "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"),
}

#: ``(module, class_name)`` of every object in the config of a network the siamese rung
#: saves (layers, initialisers, regulariser, optimiser, metric, dtype policy), checked
#: against fresh saves by the tests. Anything else (Lambda, custom or unknown classes)
#: is refused before Keras reads the file.
KERAS_CLASSES = frozenset({
    ("keras", "DTypePolicy"),
    ("keras.initializers", "GlorotUniform"),
    ("keras.initializers", "Ones"),
    ("keras.initializers", "Zeros"),
    ("keras.layers", "BatchNormalization"),
    ("keras.layers", "Concatenate"),
    ("keras.layers", "Dense"),
    ("keras.layers", "Dot"),
    ("keras.layers", "Dropout"),
    ("keras.layers", "InputLayer"),
    ("keras.metrics", "RootMeanSquaredError"),
    ("keras.optimizers", "Adam"),
    ("keras.regularizers", "L1L2"),
    ("keras.src.models.functional", "Functional"),
    (None, "__keras_tensor__"),
})
#: The kit's own layers a saved siamese may hold: (module, class name, registered name).
KIT_KERAS_CLASSES = frozenset({
    ("kit.models.siamese", "PrecursorMatch", "kit>PrecursorMatch"),
    ("kit.models.siamese", "PairHead", "kit>PairHead"),
})

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


def read_archive_json(file, member, what):
    """A JSON object stored as ``member`` of a checked zip (size already bounded)."""
    where = printable(file)
    try:
        with zipfile.ZipFile(file) as archive:
            data = archive.read(member)
        value = json.loads(data.decode("utf-8"))
    except KeyError:
        raise UserError(f"{where}: no {member} inside: not a {what}") from None
    except RecursionError:
        raise UserError(f"{where}: {member} is nested too deeply: not a {what}") from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{where}: unreadable {member} ({printable(exc, 120)}): not a {what}") from None
    if not isinstance(value, dict):
        raise UserError(f"{where}: {member} is a JSON {_json_kind(value)}, not an object: not a {what}")
    return value


# --- skops ---------------------------------------------------------------------------


def load_skops(file, cls):
    """Load a scikit-learn rung saved with skops, trusting only the types that rung saves.

    ``cls.name`` picks the allowed types from :data:`SKOPS_TYPES`; the loaded object must
    be a fitted ``cls``. Nothing in the file can run code: skops builds objects from
    audited types only and never unpickles.
    """
    import skops.io as sio

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


# --- Keras ---------------------------------------------------------------------------


def check_keras_config(file):
    """Refuse a ``.keras`` file whose config names a class the siamese rung never saves.

    This runs before Keras reads the file: Lambda layers, custom objects and classes
    from other modules are refused by name, whatever ``safe_mode`` would make of them,
    and so are layers wider than :data:`MAX_KERAS_UNITS`.
    """
    where = printable(file)
    check_archive(file, "Keras network")
    config = read_archive_json(file, "config.json", "Keras network saved by the siamese rung")
    for module, class_name, registered in _keras_classes(config, 0, where):
        names_ok = all(isinstance(x, (str, type(None))) for x in (module, class_name, registered))
        known = names_ok and (((module, class_name) in KERAS_CLASSES and registered in (None, class_name))
                              or (module, class_name, registered) in KIT_KERAS_CLASSES)
        if not known:
            module, class_name = (module, class_name) if names_ok else (None, "an object with a non-text name")
            shown = printable(f"{module}.{class_name}" if module else str(class_name), 80)
            extra = " (a Lambda layer runs code)" if class_name == "Lambda" else ""
            raise UserError(f"{where}: refusing to load {shown}{extra}: the siamese rung saves only standard Keras "
                            "layers and the kit's own")
    # After the walk above, which refuses configs nested too deeply to walk.
    # Integers only: the kit's PairHead would read "100000000" or 8.7 as a width.
    for units in _keras_units(config):
        if isinstance(units, bool) or not isinstance(units, int) or not 0 < units <= MAX_KERAS_UNITS:
            raise UserError(f"{where}: a layer of {printable(repr(units), 40)} units, expected an integer from 1 to "
                            f"{MAX_KERAS_UNITS:,}: not a network saved by the siamese rung")


def _keras_units(node):
    """Every ``units`` value (an int, or a list of ints) in a Keras config (nesting already checked)."""
    if isinstance(node, dict):
        if "units" in node:
            units = node["units"]
            yield from units if isinstance(units, list) else [units]
        for value in node.values():
            yield from _keras_units(value)
    elif isinstance(node, list):
        for value in node:
            yield from _keras_units(value)


def _keras_classes(node, depth, where):
    """``(module, class_name, registered_name)`` of every object in a Keras config."""
    if depth > _NESTING:
        raise UserError(f"{where}: config.json is nested too deeply: not a network saved by the siamese rung")
    if isinstance(node, dict):
        if "class_name" in node:
            yield node.get("module"), node["class_name"], node.get("registered_name")
        for value in node.values():
            yield from _keras_classes(value, depth + 1, where)
    elif isinstance(node, list):
        for value in node:
            yield from _keras_classes(value, depth + 1, where)
