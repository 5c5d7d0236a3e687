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
    import h5py

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
    import h5py

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
