"""Saved model folders are untrusted input (kit.models.untrusted, kit.models.base.read_manifest).

Every hostile or broken folder must end in one UserError line (exit 2 from
``kit predict``), never run code, never read outside the folder, never inflate a bomb.
"""
import io
import json
import math
import os
import shutil
import struct
import zipfile
import zlib

import numpy as np
import pytest

import kit.cli
import kit.models
from kit.errors import UserError
from kit.models import untrusted

SMALL = {
    "mean": {"n_pairs": 300},
    "cosine": {"n_pairs": 300, "progress": False},
    "gbm": {"n_pairs": 300, "max_iter": 20, "progress": False},
}


@pytest.fixture(scope="module")
def spectra():
    from conftest import structure_spectra

    return structure_spectra()


@pytest.fixture(scope="module")
def saved(tmp_path_factory, spectra):
    """One saved folder per classical rung (read-only: copy before changing)."""
    root = tmp_path_factory.mktemp("saved")
    return {name: kit.models.get(name)(**params).fit(spectra).save(root / name) for name, params in SMALL.items()}


@pytest.fixture
def mean_dir(saved, tmp_path):
    folder = tmp_path / "mean"
    shutil.copytree(saved["mean"], folder)
    return folder


def manifest_of(folder):
    return json.loads((folder / "manifest.json").read_text())


def write_manifest(folder, manifest):
    (folder / "manifest.json").write_text(json.dumps(manifest))


def refused(folder, match=None, capsys=None):
    """Assert that loading ``folder`` is a UserError, and that `kit predict` exits 2 with one line."""
    with pytest.raises(UserError, match=match) as info:
        kit.models.load(folder)
    message = str(info.value)
    assert "\n" not in message and message.isprintable()
    if capsys is not None:
        capsys.readouterr()
        assert kit.cli.main(["predict", str(folder)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err and "error:" in err
    return message


# --- the pinned allow-lists ---------------------------------------------------------


@pytest.mark.parametrize("name", list(SMALL))
def test_pinned_skops_types_are_exactly_what_each_rung_saves(saved, name):
    import skops.io as sio

    assert set(sio.get_untrusted_types(file=saved[name] / "model.skops")) == set(untrusted.SKOPS_TYPES[name])
    assert not any(t.startswith("builtins.") for t in untrusted.SKOPS_TYPES[name])


@pytest.mark.parametrize("name", list(SMALL))
def test_saved_models_load_and_predict_the_same(saved, spectra, name):
    from model_builders import all_pairs

    pairs = all_pairs(spectra, limit=50)
    model = kit.models.load(saved[name])
    assert type(model).__name__ == type(kit.models.get(name)()).__name__
    assert np.isfinite(model.predict(spectra, pairs)).all()


def test_saved_files_are_readable_by_others_under_the_umask(saved):
    for path in saved["mean"].iterdir():
        assert path.stat().st_mode & 0o044 == 0o044 & ~untrusted_umask()


def untrusted_umask():
    from kit.fileio import current_umask

    return current_umask()


# --- the manifest ---------------------------------------------------------------------


@pytest.mark.parametrize("text, match", [
    ("[]", "JSON object, found a JSON array"),
    ("3", "found a JSON number"),
    ('"mean"', "found a JSON string"),
    ("null", "found a JSON null"),
    ("{", "not valid JSON"),
    ("", "not valid JSON"),
    ("[" * 100_000, "nested too deeply|not valid JSON"),
    ('{"model": "mean", "kit_version": "0.1.0", "x": "' + "a" * (2 << 20) + '"}', "larger than"),
])
def test_manifest_that_is_not_a_small_json_object(mean_dir, text, match, capsys):
    (mean_dir / "manifest.json").write_text(text)
    refused(mean_dir, match, capsys)


def test_manifest_that_is_not_utf8(mean_dir):
    (mean_dir / "manifest.json").write_bytes(b'{"model": "\xff"}')
    refused(mean_dir, "not UTF-8")


@pytest.mark.parametrize("field, value, match", [
    ("model", ["mean"], "'model' must be a string"),
    ("model", 3, "'model' must be a string"),
    ("model", None, "'model' must be a string"),
    ("model", "os.system", "unknown model"),
    ("model", "__import__('os').system('id')", "unknown model"),
    ("model", "siamese", "format 'skops' does not match the siamese rung"),
    ("kit_version", 1, "'kit_version' must be a string"),
    ("kit_version", "99.0.0", "same major version"),
    ("params", [], "'params' must be an object"),
    ("file", 5, "'file' must be a string"),
    ("fit_seconds", "fast", "'fit_seconds' must be a finite number"),
    ("validation_score", [0.1], "'validation_score'"),
    ("format", "pickle", "format 'pickle' does not match"),
    ("competition", "../../etc", "must be a plain name"),
    ("competition", "/etc", "must be a plain name"),
    ("competition", 7, "'competition' must be a string"),
    ("competition_files", [], "'competition_files' must be an object"),
    ("competition_files", {"train.mgf": 1}, "competition_files"),
])
def test_manifest_fields_of_the_wrong_type(mean_dir, field, value, match, capsys):
    manifest = manifest_of(mean_dir)
    manifest[field] = value
    write_manifest(mean_dir, manifest)
    refused(mean_dir, match, capsys)


@pytest.mark.parametrize("field", ["model", "kit_version"])
def test_manifest_without_a_required_field(mean_dir, field):
    manifest = manifest_of(mean_dir)
    del manifest[field]
    write_manifest(mean_dir, manifest)
    refused(mean_dir, f"no '{field}' field")


def test_not_a_model_folder(tmp_path, capsys):
    refused(tmp_path / "missing", "no such folder", capsys)
    (tmp_path / "file").write_text("x")
    refused(tmp_path / "file", "found a file")
    refused(tmp_path, "not a saved model")


def test_manifest_symlink_leading_out_is_refused(mean_dir, tmp_path):
    outside = tmp_path / "outside.json"
    shutil.copy(mean_dir / "manifest.json", outside)
    (mean_dir / "manifest.json").unlink()
    (mean_dir / "manifest.json").symlink_to(outside)
    refused(mean_dir, "outside the model folder")


# --- the model file's path ------------------------------------------------------------


@pytest.mark.parametrize("name, match", [
    ("/etc/passwd", "inside the model folder"),
    ("../mean/model.skops", "no absolute path, no '..'"),
    ("sub/../../model.skops", "no absolute path, no '..'"),
    ("..\\model.skops", "no absolute path, no '..'"),
    ("C:\\Windows\\model.skops", "no absolute path"),
    ("\\\\server\\share\\model.skops", "no absolute path"),
    ("", "must be a file name"),
    ("model\x00.skops", "must be a file name"),
    ("missing.skops", "found no such file"),
    (".", "not a regular file"),
])
def test_manifest_file_must_stay_inside_the_folder(mean_dir, name, match, capsys):
    manifest = manifest_of(mean_dir)
    manifest["file"] = name
    write_manifest(mean_dir, manifest)
    refused(mean_dir, match, capsys)


def test_model_file_symlink_leading_out_is_refused(mean_dir, tmp_path):
    outside = tmp_path / "elsewhere.skops"
    shutil.move(mean_dir / "model.skops", outside)
    (mean_dir / "model.skops").symlink_to(outside)
    refused(mean_dir, "outside the model folder")


def test_model_file_symlink_inside_the_folder_is_fine(mean_dir):
    (mean_dir / "real.skops").write_bytes((mean_dir / "model.skops").read_bytes())
    (mean_dir / "model.skops").unlink()
    (mean_dir / "model.skops").symlink_to("real.skops")
    assert kit.models.load(mean_dir).name == "mean"


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_model_file_that_is_a_device_is_refused(mean_dir):
    (mean_dir / "model.skops").unlink()
    (mean_dir / "model.skops").symlink_to("/dev/zero")
    refused(mean_dir, "outside the model folder|not a regular file")


# --- the skops file's content ---------------------------------------------------------


def _schema(folder):
    with zipfile.ZipFile(folder / "model.skops") as archive:
        return json.loads(archive.read("schema.json")), {n: archive.read(n) for n in archive.namelist()}


def _rewrite(folder, schema=None, replace=None, compression=zipfile.ZIP_STORED):
    old_schema, members = _schema(folder)
    members["schema.json"] = json.dumps(schema if schema is not None else old_schema).encode()
    members.update(replace or {})
    with zipfile.ZipFile(folder / "model.skops", "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


@pytest.mark.parametrize("content, match", [
    (b"", "not a readable"),
    (b"not a zip at all\n", "not a readable"),
    (b"PK\x03\x04" + os.urandom(200), "not a readable"),
])
def test_garbage_model_file(mean_dir, content, match, capsys):
    (mean_dir / "model.skops").write_bytes(content)
    refused(mean_dir, match, capsys)


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.999])
def test_truncated_model_file(saved, mean_dir, keep):
    data = (saved["gbm"] / "model.skops").read_bytes()
    shutil.rmtree(mean_dir)
    shutil.copytree(saved["gbm"], mean_dir)
    (mean_dir / "model.skops").write_bytes(data[: int(len(data) * keep)])
    refused(mean_dir, "not a readable")


def test_corrupted_bytes_inside_a_valid_zip(saved, tmp_path):
    folder = tmp_path / "gbm"
    shutil.copytree(saved["gbm"], folder)
    data = bytearray((folder / "model.skops").read_bytes())
    middle = len(data) // 2
    data[middle: middle + 64] = os.urandom(64)
    (folder / "model.skops").write_bytes(bytes(data))
    try:
        model = kit.models.load(folder)
    except UserError as exc:
        assert "\n" not in str(exc)
    else:  # the bytes hit unused padding: the model still loads as the kit's own type
        assert model.name == "gbm"


def test_npz_named_skops(mean_dir, capsys):
    with open(mean_dir / "model.skops", "wb") as handle:
        np.savez(handle, a=np.arange(3))
    refused(mean_dir, "not a readable skops model", capsys)


def test_siamese_weights_named_skops(mean_dir, siamese_dir):
    shutil.copy(siamese_dir / "model.weights.h5", mean_dir / "model.skops")
    refused(mean_dir, "not a readable mean model")


def test_another_rungs_file_under_this_rungs_name(saved, tmp_path, capsys):
    folder = tmp_path / "forged"
    shutil.copytree(saved["gbm"], folder)
    manifest = manifest_of(folder)
    manifest["model"] = "mean"
    write_manifest(folder, manifest)
    refused(folder, "types a mean model does not save", capsys)


def test_mean_file_under_the_cosine_name(saved, tmp_path):
    folder = tmp_path / "forged"
    shutil.copytree(saved["mean"], folder)
    manifest = manifest_of(folder)
    manifest["model"] = "cosine"
    write_manifest(folder, manifest)
    refused(folder, "does not save: kit.models.mean.MeanModel")


@pytest.mark.parametrize("module, cls", [
    ("os", "system"),
    ("builtins", "eval"),
    ("subprocess", "Popen"),
    ("kit.models.siamese", "SiameseModel"),
    ("collections", "OrderedDict"),
])
def test_schema_naming_other_classes_is_refused(mean_dir, module, cls, capsys):
    schema, _ = _schema(mean_dir)
    schema["__module__"], schema["__class__"] = module, cls
    _rewrite(mean_dir, schema)
    refused(mean_dir, f"does not save: {module}.{cls}", capsys)


@pytest.mark.parametrize("module, function", [("builtins", "eval"), ("os", "system"), ("builtins", "exec")])
def test_schema_with_a_function_is_refused(mean_dir, module, function):
    schema, _ = _schema(mean_dir)
    schema["content"]["content"]["n_pairs"] = {
        "__class__": function, "__module__": module, "__loader__": "FunctionNode", "__id__": 1,
    }
    _rewrite(mean_dir, schema)
    refused(mean_dir, f"{module}.{function}")


class _Payload:
    """Pickles to a call of os.mkdir: unpickling it would create a folder."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_pickle_inside_the_skops_zip_is_never_unpickled(mean_dir, tmp_path):
    marker = tmp_path / "pwned"
    schema, members = _schema(mean_dir)
    npy = next(name for name in members if name.endswith(".npy"))
    buffer = io.BytesIO()
    np.save(buffer, np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    _rewrite(mean_dir, schema, replace={npy: buffer.getvalue(), "payload.pkl": buffer.getvalue()})
    with pytest.raises(UserError, match="not a readable skops model"):
        kit.models.load(mean_dir)
    assert not marker.exists()


def test_array_header_claiming_terabytes_is_refused(mean_dir):
    schema, members = _schema(mean_dir)
    npy = next(name for name in members if name.endswith(".npy"))
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f8", "fortran_order": False, "shape": (1 << 40,)})
    buffer.write(bytes(64))
    _rewrite(mean_dir, schema, replace={npy: buffer.getvalue()})
    refused(mean_dir, "not a readable skops model")


def test_skops_file_with_wrong_state_types(spectra, tmp_path):
    model = kit.models.get("mean")(n_pairs=300).fit(spectra)
    model.regressor_ = "not a regressor"
    folder = model.save(tmp_path / "m")
    refused(folder, "regressor_ is a str, expected a DummyRegressor")
    model.regressor_, model.fitted_ = None, "yes"
    import skops.io as sio

    sio.dump(model, folder / "model.skops")
    refused(folder, "not fitted")


def test_gbm_with_forged_feature_names(saved, tmp_path):
    import skops.io as sio

    model = kit.models.load(saved["gbm"])
    model.feature_names_ = ["__class__"] * len(model.feature_names_)
    folder = tmp_path / "gbm"
    shutil.copytree(saved["gbm"], folder)
    sio.dump(model, folder / "model.skops")
    refused(folder, "feature names are not the kit's pair features")


def test_deeply_nested_schema(mean_dir):
    schema, members = _schema(mean_dir)
    opening = '{"__class__": "list", "__module__": "builtins", "__loader__": "ListNode", "__id__": 1, "content": ['
    text = opening * 5000 + json.dumps(schema) + "]}" * 5000
    _rewrite(mean_dir, replace={"schema.json": text.encode()})
    refused(mean_dir)


# --- zip bombs and odd archives -------------------------------------------------------


def write_zip_bomb(path, member, unpacked_gib):
    """A real zip whose ``member`` inflates to ``unpacked_gib`` GiB of zeros.

    Built from one deflate block of 1 MiB of zeros, repeated (each block ends with a full
    flush, so copies can follow each other), then a final empty block: a few MB on disk
    and in memory, ``unpacked_gib`` GiB when inflated. The CRC is the real one.
    """
    chunk = bytes(1 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    count = int(unpacked_gib * 1024)
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(chunk, crc)
    final = zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    size, packed, name = count << 20, len(block) * count + len(final), member.encode()
    with open(path, "wb") as handle:
        handle.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, packed, size, len(name), 0) + name)
        for _ in range(count):
            handle.write(block)
        handle.write(final)
        directory = handle.tell()
        central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, crc, packed, size, len(name),
                              0, 0, 0, 0, 0, 0) + name
        handle.write(central)
        handle.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), directory, 0))


def test_zip_bomb_builder_is_a_real_zip(tmp_path):
    path = tmp_path / "small.zip"
    write_zip_bomb(path, "schema.json", 1 / 256)  # 4 MiB: small enough to inflate here
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        assert archive.getinfo("schema.json").file_size == 4 << 20


def test_zip_bomb_of_gigabytes_is_refused_before_inflating(mean_dir, capsys):
    write_zip_bomb(mean_dir / "model.skops", "0.npy", 3)
    assert (mean_dir / "model.skops").stat().st_size < 5 << 20
    message = refused(mean_dir, "unpacks to more than", capsys)
    assert "zip bomb" in message
    write_zip_bomb(mean_dir / "model.skops", "schema.json", 3)
    refused(mean_dir, "entry 'schema.json' unpacks to 3,221,225,472 bytes")


def test_small_zip_bomb_is_refused_by_its_ratio(mean_dir):
    write_zip_bomb(mean_dir / "model.skops", "0.npy", 1 / 16)  # 64 MiB from 64 KiB
    refused(mean_dir, "times larger than it is stored")


def test_oversized_json_parts_are_refused(mean_dir, monkeypatch):
    monkeypatch.setitem(untrusted.MAX_JSON_MEMBER_BYTES, "schema.json", 1000)
    refused(mean_dir, "entry 'schema.json' unpacks to")


def test_too_many_entries(saved, tmp_path, monkeypatch):
    monkeypatch.setattr(untrusted, "MAX_ENTRIES", 10)
    folder = tmp_path / "gbm"
    shutil.copytree(saved["gbm"], folder)
    refused(folder, "entries is too many")


def test_model_file_too_large_on_disk(mean_dir, monkeypatch):
    monkeypatch.setattr(untrusted, "MAX_UNPACKED_BYTES", 100)
    refused(mean_dir, "too large")


def test_other_compression_methods_are_refused(mean_dir):
    _rewrite(mean_dir, compression=zipfile.ZIP_BZIP2)
    refused(mean_dir, "compression method 12")


def test_entry_paths_outside_the_archive_are_refused(mean_dir):
    _rewrite(mean_dir, replace={"../../evil.npy": b"x"})
    refused(mean_dir, "path outside the archive")


# --- the siamese rung: parameters and a weights file ---------------------------------

siamese = pytest.importorskip("kit.models.siamese")
TINY = dict(hidden_units=(16,), embedding_dim=8, pairs_per_epoch=128, validation_pairs=64, epochs=1, batch_size=32,
            validation_fraction=0.25, lr_patience=1, verbose=0, seed=0)
WEIGHTS = "model.weights.h5"


@pytest.fixture(scope="module")
def siamese_saved(tmp_path_factory):
    from test_models_siamese import make_spectra

    root = tmp_path_factory.mktemp("siamese")
    spectra = make_spectra()
    with_metadata = siamese.SiameseModel(**(TINY | {"precursor_encoding": 4, "head_units": ()})).fit(spectra)
    without = siamese.SiameseModel(**(TINY | {"use_metadata": False, "hidden_units": (8, 8)})).fit(spectra)
    headed = siamese.SiameseModel(**(TINY | {"precursor_encoding": 4, "head_units": (8,)})).fit(spectra)
    return (with_metadata.save(root / "with"), without.save(root / "without"), spectra,
            headed.save(root / "headed"))


@pytest.fixture
def siamese_dir(siamese_saved, tmp_path):
    folder = tmp_path / "siamese-copy"
    shutil.copytree(siamese_saved[0], folder)
    return folder


@pytest.fixture
def headed_dir(siamese_saved, tmp_path):
    folder = tmp_path / "headed-copy"
    shutil.copytree(siamese_saved[3], folder)
    return folder


def predictions(folder, spectra):
    from test_models_siamese import random_pairs

    return kit.models.load(folder).predict(spectra, random_pairs(spectra))


def legacy_copy(folder, target, config=None, members=None):
    """``folder`` as an earlier kit saved it: a Keras zip ``model.keras`` (``config`` replacing its config.json)."""
    shutil.copytree(folder, target)
    kit.models.load(folder).siamese_.save(target / "model.keras")
    (target / WEIGHTS).unlink()
    manifest = manifest_of(target)
    manifest["file"] = "model.keras"
    write_manifest(target, manifest)
    if config is not None or members is not None:
        with zipfile.ZipFile(target / "model.keras") as archive:
            kept = {n: archive.read(n) for n in archive.namelist()}
        kept.update({"config.json": config} if config is not None else {})
        kept.update(members or {})
        with zipfile.ZipFile(target / "model.keras", "w") as archive:
            for name, data in kept.items():
                if data is not None:
                    archive.writestr(name, data)
    return target


def test_a_saved_siamese_holds_its_parameters_and_weights_only(siamese_saved):
    for folder in (*siamese_saved[:2], siamese_saved[3]):
        assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", WEIGHTS]
        assert manifest_of(folder)["file"] == WEIGHTS
        # Every dataset float32, bounded by the network's own size, and no optimiser state.
        model = kit.models.load(folder)
        shapes = untrusted.weight_shapes(folder / WEIGHTS, model.siamese_.count_params())
        assert sum(math.prod(s) for s in shapes.values()) == model.siamese_.count_params()
        assert not any(path.startswith("optimizer") for path in shapes)


@pytest.mark.parametrize("key, value", [
    ("hidden_units", [10**9]), ("hidden_units", [0]), ("hidden_units", [-1]), ("hidden_units", [16.0]),
    ("hidden_units", ["16"]), ("hidden_units", [True]), ("hidden_units", 10**9), ("hidden_units", []),
    ("hidden_units", [16] * 9), ("hidden_units", [65_536, 65_536]), ("hidden_units", [50_000]),
    ("hidden_units", {"16": 16}), ("hidden_units", None), ("hidden_units", [2**70]),
    ("embedding_dim", 10**9), ("embedding_dim", 0), ("embedding_dim", -1), ("embedding_dim", 8.0),
    ("embedding_dim", "8"), ("embedding_dim", True), ("embedding_dim", None),
    ("head_units", [10**9]), ("head_units", [8] * 5), ("head_units", [-1]), ("head_units", ["8"]),
    ("head_units", [8.5]), ("head_units", "8"),
    ("precursor_encoding", 3), ("precursor_encoding", 258), ("precursor_encoding", -2), ("precursor_encoding", 4.0),
    ("precursor_encoding", "4"), ("precursor_encoding", True), ("precursor_encoding", 10**12),
    ("dropout", 2), ("dropout", "0.2"), ("batchnorm_momentum", None), ("calibrate", "yes"),
])
def test_forged_parameters_are_refused_before_a_network_is_built(headed_dir, key, value, monkeypatch, capsys):
    # The manifest's parameters build the network: a forged width would allocate gigabytes first.
    built = []
    monkeypatch.setattr(siamese.estimator, "build_embedding_network", lambda *a, **k: built.append(a))
    manifest = manifest_of(headed_dir)
    manifest["params"][key] = value
    write_manifest(headed_dir, manifest)
    refused(headed_dir, "unusable parameters", capsys)
    assert not built


@pytest.mark.parametrize("binning", [
    {"bin_width": 1e-9}, {"bin_width": 1e-320}, {"mz_range": [0, 1e300]}, {"bin_width": 0.0001},
    {"bin_width": 0}, {"bin_width": -0.1}, {"mz_range": [1000, 10]}, {"mz_range": [10]}, {"intensity_power": 0},
])
def test_binning_giving_a_huge_or_no_input_is_refused(siamese_dir, binning, monkeypatch, capsys):
    # The binning fixes the input width: 1e-9 Da bins would be a 10**12-wide first layer.
    built = []
    monkeypatch.setattr(siamese.estimator, "build_embedding_network", lambda *a, **k: built.append(a))
    manifest = manifest_of(siamese_dir)
    manifest["params"].update(binning)
    manifest["binning"].update(binning)
    write_manifest(siamese_dir, manifest)
    message = refused(siamese_dir, "unusable parameters", capsys)
    assert "bin" in message and not built


@pytest.mark.parametrize("field, value", [("bin_width", 1e-320), ("bin_width", "wide"), ("evil", 1),
                                          ("intensity_power", 1.0), ("mz_range", [10, 2000])])
def test_a_manifest_binning_other_than_the_parameters_is_refused(siamese_dir, field, value):
    manifest = manifest_of(siamese_dir)
    manifest["binning"][field] = value
    write_manifest(siamese_dir, manifest)
    refused(siamese_dir, "binning")


def _forge(folder, change):
    import h5py

    with h5py.File(folder / WEIGHTS, "r+") as handle:
        change(handle, h5py)


def _dense_kernel(handle):
    """Path of the first Dense layer's kernel in a weights file (the widest dataset)."""
    paths = []
    handle.visititems(lambda name, node: paths.append(name) if hasattr(node, "shape") else None)
    return max(paths, key=lambda p: math.prod(handle[p].shape))


def _replace(handle, path, **dataset):
    del handle[path]
    handle.create_dataset(path, **dataset)


def _transpose(handle, h5py):
    path = "layers/functional/layers/dense_1/vars/0"  # the embedding's (16, 8) kernel
    _replace(handle, path, data=handle[path][()].T.copy())


def _bigger(handle, h5py):
    path = _dense_kernel(handle)
    _replace(handle, path, shape=(handle[path].shape[0] + 1, handle[path].shape[1]), dtype="float32")


def _extra(handle, h5py):
    handle.create_dataset("layers/evil/vars/0", data=np.zeros(3, dtype=np.float32))


def _extra_empty(handle, h5py):
    handle.create_dataset("layers/evil/vars/0", shape=(0,), dtype="float32")


def _missing(handle, h5py):
    del handle["layers/functional/layers/dense_1/vars/1"]


def _set(value, layer="dense_1", index=0):
    def change(handle, h5py):
        path = f"layers/functional/layers/{layer}/vars/{index}"
        data = handle[path][()]
        data.flat[0] = value
        handle[path][...] = data
    return change


def _declared(shape, dtype="float32"):
    def change(handle, h5py):
        handle.create_dataset("layers/huge/vars/0", shape=shape, dtype=dtype)
    return change


def _as_dtype(dtype):
    def change(handle, h5py):
        path = "layers/functional/layers/dense_1/vars/1"
        _replace(handle, path, data=handle[path][()].astype(dtype))
    return change


def _soft_link(handle, h5py):
    del handle["layers/functional/layers/dense_1/vars/1"]
    handle["layers/functional/layers/dense_1/vars/1"] = h5py.SoftLink("/layers/functional/layers/dense/vars/1")


def _external_link(handle, h5py):
    del handle["layers/functional/layers/dense_1/vars/1"]
    handle["layers/functional/layers/dense_1/vars/1"] = h5py.ExternalLink("/etc/passwd", "/data")


def _external_storage(handle, h5py):
    path = "layers/functional/layers/dense_1/vars/1"
    del handle[path]
    handle.create_dataset(path, shape=(8,), dtype="float32", external=[("/etc/passwd", 0, 32)])


def _virtual(handle, h5py):
    path = "layers/functional/layers/dense_1/vars/1"
    layout = h5py.VirtualLayout(shape=(8,), dtype="float32")
    layout[:] = h5py.VirtualSource("/etc/passwd", "data", shape=(8,))
    del handle[path]
    handle.create_virtual_dataset(path, layout)


def _attribute(handle, h5py):
    handle["layers/functional/layers/dense_1/vars/1"].attrs["dtype"] = np.zeros(10_000, dtype=np.float32)


def _named_type(handle, h5py):
    handle["layers/type"] = np.dtype("float32")


@pytest.mark.parametrize("change, match", [
    (_transpose, "has shape \\(8, 16\\) but the network built from the manifest's parameters needs shape \\(16, 8\\)"),
    (_bigger, "declares 158,666 values, more than the 158,650 its network holds"),
    (_extra, "declares 158,653 values, more than the 158,650"),
    (_extra_empty, "'layers/evil/vars/0' has shape \\(0,\\) but .* needs no such dataset"),
    (_missing, "holds 158,642 weights but the network built from the manifest's parameters has 158,650"),
    (_set(np.nan), "not finite"),
    (_set(np.inf), "not finite"),
    (_set(-np.inf, layer="precursor_match"), "not finite"),
    (_set(np.nan, layer="batch_normalization", index=2), "not finite"),
    (_set(-1.0, layer="batch_normalization", index=3), "negative moving variance"),
    (_declared((10**5, 10**5)), "declares 10,000,000,000 values"),
    (_declared((2**62, 4)), "declares"),
    (_declared(()), "declares 158,651 values"),
    (_as_dtype("float64"), "expected float32"),
    (_as_dtype("int64"), "expected float32"),
    (_as_dtype("S8"), "expected float32"),
    (_declared((4,), dtype=np.dtype([("a", "f4"), ("b", "f4")])), "expected float32"),
    (_soft_link, "SoftLink"),
    (_external_link, "ExternalLink"),
    (_external_storage, "stored in other files"),
    (_virtual, "stored in other files"),
    (_named_type, "not a dataset or a group"),
    (_attribute, "carries attributes"),
])
def test_forged_weight_files_are_refused(siamese_dir, change, match, capsys):
    _forge(siamese_dir, change)
    refused(siamese_dir, match, capsys)


def test_a_weights_file_far_larger_than_its_network_is_refused(siamese_dir):
    # 158,650 float32 weights take 0.6 MB: 17 MB more is no weights file of that network.
    with open(siamese_dir / WEIGHTS, "ab") as handle:
        handle.write(bytes(17 << 20))
    refused(siamese_dir, "bytes is more than the 17,411,816 a siamese weights file of 158,650 values takes")


def test_a_weights_file_of_too_many_objects_is_refused(siamese_dir, monkeypatch):
    monkeypatch.setattr(untrusted, "MAX_H5_OBJECTS", 20)
    refused(siamese_dir, "more than 20 objects")


@pytest.mark.parametrize("content", [b"", b"garbage", b"\x89HDF\r\n\x1a\n" + bytes(100), "truncated", "skops",
                                     "keras"])
def test_a_weights_file_that_is_not_hdf5_is_refused(siamese_dir, saved, content, capsys):
    if content == "truncated":
        data = (siamese_dir / WEIGHTS).read_bytes()
        content = data[: len(data) // 2]
    elif content == "skops":
        content = (saved["mean"] / "model.skops").read_bytes()
    elif content == "keras":
        legacy = legacy_copy(siamese_dir, siamese_dir.parent / "legacy")
        content = (legacy / "model.keras").read_bytes()
    (siamese_dir / WEIGHTS).write_bytes(content)
    refused(siamese_dir, "not an HDF5|not a readable", capsys)


def test_a_weights_file_that_is_a_symlink_out_a_directory_or_a_fifo_is_refused(siamese_dir, tmp_path, capsys):
    outside = tmp_path / "elsewhere.weights.h5"
    shutil.move(siamese_dir / WEIGHTS, outside)
    (siamese_dir / WEIGHTS).symlink_to(outside)
    refused(siamese_dir, "outside the model folder", capsys)
    (siamese_dir / WEIGHTS).unlink()
    (siamese_dir / WEIGHTS).mkdir()
    refused(siamese_dir, "not a regular file", capsys)
    (siamese_dir / WEIGHTS).rmdir()
    os.mkfifo(siamese_dir / WEIGHTS)
    refused(siamese_dir, "not a regular file", capsys)
    (siamese_dir / WEIGHTS).unlink()
    (siamese_dir / WEIGHTS).symlink_to("/dev/zero")
    refused(siamese_dir, "outside the model folder|not a regular file")
    (siamese_dir / WEIGHTS).unlink()
    (siamese_dir / WEIGHTS).symlink_to(WEIGHTS)  # a loop
    refused(siamese_dir, "not a regular file|no such file|outside")


def test_a_weights_file_symlink_inside_the_folder_is_fine(siamese_dir, siamese_saved):
    (siamese_dir / WEIGHTS).rename(siamese_dir / "real.weights.h5")
    (siamese_dir / WEIGHTS).symlink_to("real.weights.h5")
    spectra = siamese_saved[2]
    np.testing.assert_array_equal(predictions(siamese_dir, spectra), predictions(siamese_saved[0], spectra))


@pytest.mark.parametrize("name, match", [("model.skops", "must be the network's model.weights.h5"),
                                         ("manifest.json", "must be the network's"),
                                         ("../with/model.weights.h5", "no absolute path")])
def test_the_manifest_names_the_weights_file(siamese_dir, name, match, capsys):
    (siamese_dir / "model.skops").write_bytes(b"x")
    manifest = manifest_of(siamese_dir)
    manifest["file"] = name
    write_manifest(siamese_dir, manifest)
    refused(siamese_dir, match, capsys)


# --- folders saved by earlier versions (model.keras) ---------------------------------


@pytest.mark.parametrize("index", [0, 1, 3])
def test_an_earlier_save_loads_from_its_weights_file_and_predicts_the_same(siamese_saved, tmp_path, index):
    folder = legacy_copy(siamese_saved[index], tmp_path / "legacy")
    spectra = siamese_saved[2]
    np.testing.assert_array_equal(predictions(folder, spectra), predictions(siamese_saved[index], spectra))


def _config_with(siamese_saved, tmp_path, change):
    folder = legacy_copy(siamese_saved[3], tmp_path / "source")
    with zipfile.ZipFile(folder / "model.keras") as archive:
        config = json.loads(archive.read("config.json"))
    change(config)
    return json.dumps(config).encode()


def _lambda_and_wide(config):
    config["config"]["layers"].append({"module": "keras.layers", "class_name": "Lambda",
                                       "config": {"function": {"class_name": "__lambda__", "config": {"code": "x"}}}})
    for node in _config_nodes(config):
        if "units" in node:
            node["units"] = 10**9


def _config_nodes(node):
    if isinstance(node, dict):
        yield node
        node = list(node.values())
    if isinstance(node, list):
        for value in node:
            yield from _config_nodes(value)


@pytest.mark.parametrize("config", ["forged", b"not json", b"[" * 100_000, b'{"x": "' + b"a" * (4 << 20) + b'"}',
                                    None])
def test_an_earlier_saves_config_is_never_read(siamese_saved, tmp_path, config, capsys):
    # Lambda layers, 10**9-unit layers, garbage or no config at all: the network is rebuilt from the manifest.
    if config == "forged":
        config = _config_with(siamese_saved, tmp_path, _lambda_and_wide)
    folder = legacy_copy(siamese_saved[3], tmp_path / "legacy", config=config,
                         members={"config.json": None} if config is None else None)
    spectra = siamese_saved[2]
    np.testing.assert_array_equal(predictions(folder, spectra), predictions(siamese_saved[3], spectra))


def test_an_earlier_save_whose_network_differs_from_its_manifest_is_refused_saying_to_retrain(siamese_saved, tmp_path,
                                                                                             capsys):
    folder = legacy_copy(siamese_saved[3], tmp_path / "legacy")
    manifest = manifest_of(folder)
    manifest["params"]["head_units"] = [4]
    write_manifest(folder, manifest)
    message = refused(folder, "retrain", capsys)
    assert "model.keras" in message


@pytest.mark.parametrize("members, match", [
    ({WEIGHTS: None}, "no model.weights.h5 inside"),
    ({WEIGHTS: b"not hdf5"}, "not an HDF5"),
    ({"../../evil.h5": b"x"}, "path outside the archive"),
    ({"/etc/evil.h5": b"x"}, "path outside the archive"),
])
def test_a_damaged_earlier_save_is_refused(siamese_saved, tmp_path, members, match, capsys):
    folder = legacy_copy(siamese_saved[0], tmp_path / "legacy", members=members)
    refused(folder, match, capsys)


@pytest.mark.parametrize("content", [b"", b"garbage", b"PK\x03\x04truncated", "half"])
def test_an_earlier_save_that_is_not_a_zip_is_refused(siamese_saved, tmp_path, content, capsys):
    folder = legacy_copy(siamese_saved[0], tmp_path / "legacy")
    if content == "half":
        content = (folder / "model.keras").read_bytes()[:2000]
    (folder / "model.keras").write_bytes(content)
    refused(folder, "not a readable", capsys)


def test_a_zip_bomb_named_model_keras_is_refused_before_inflating(siamese_saved, tmp_path, capsys):
    folder = legacy_copy(siamese_saved[0], tmp_path / "legacy")
    write_zip_bomb(folder / "model.keras", WEIGHTS, 3)
    assert (folder / "model.keras").stat().st_size < 5 << 20
    assert "zip bomb" in refused(folder, "unpacks to more than", capsys)
    write_zip_bomb(folder / "model.keras", WEIGHTS, 1 / 16)
    refused(folder, "times larger than it is stored")


def test_extract_member_copies_at_most_its_limit(tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("w.h5", bytes(1000))
        handle.writestr("../../escape.h5", b"x")
    with pytest.raises(UserError, match="path outside the archive"):
        untrusted.extract_member(archive, "w.h5", tmp_path / "out", 2000, "network")
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("w.h5", bytes(1000))
    with pytest.raises(UserError, match="unpacks to 1,000 bytes, more than the 999"):
        untrusted.extract_member(archive, "w.h5", tmp_path / "out", 999, "network")
    assert not (tmp_path / "out").exists()
    assert untrusted.extract_member(archive, "w.h5", tmp_path / "out", 1000, "network").read_bytes() == bytes(1000)


@pytest.mark.parametrize("field, value, match", [
    ("binning", None, "no 'binning' field"),
    ("binning", [0.1], "'binning' must be an object"),
    ("binning", {"bin_width": "wide"}, "unusable binning"),
    ("binning", {"bin_width": 0.1, "mz_range": [10, 1000], "intensity_power": 0.5, "evil": 1}, "unusable binning"),
    ("metadata_features", ["os.system"], "metadata_features must be"),
    ("metadata_features", [], "more than the 158,616 its network holds"),
    ("history", [], "'history' must be an object"),
    ("history", {"loss": "x"}, "history must map"),
    ("best_epoch", "3", "'best_epoch' must be an integer"),
    ("params", {"hidden_units": "many"}, "unusable parameters"),
    ("params", {"dropout": 7}, "unusable parameters"),
    ("file", "../with/model.weights.h5", "no absolute path"),
    ("format", "skops", "does not match the siamese rung"),
])
def test_siamese_manifest_fields(siamese_dir, field, value, match, capsys):
    manifest = manifest_of(siamese_dir)
    if value is None:
        del manifest[field]
    else:
        manifest[field] = value
    write_manifest(siamese_dir, manifest)
    refused(siamese_dir, match, capsys)


def test_siamese_save_writes_strict_json_even_after_a_nan_epoch(siamese_saved, tmp_path):
    model = kit.models.load(siamese_saved[0])
    model.history_ = {"val_rmse": [float("nan"), 0.3]}
    model.best_val_rmse_ = float("inf")
    folder = model.save(tmp_path / "nan")
    text = (folder / "manifest.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert kit.models.load(folder).history_ == {"val_rmse": [None, 0.3]}


# --- the numbers inside allowed types -------------------------------------------------


def _nodes(model, tree=0):
    return model.regressor_._predictors[tree][0].nodes


def _split(model):
    """Index of the first split node of the first tree (the root)."""
    return int(np.flatnonzero(_nodes(model)["is_leaf"] == 0)[0])


def _set_nodes(field, value, node=None):
    def change(model):
        nodes = _nodes(model)
        nodes[field][_split(model) if node is None else node(nodes)] = value
    return change


def _set(path, value):
    """Set the attribute at the dotted ``path`` (``regressor_._bin_mapper.n_bins``) to ``value``."""
    def change(model):
        *parents, last = path.split(".")
        obj = model
        for name in parents:
            obj = getattr(obj, name)
        setattr(obj, last, value(obj) if callable(value) else value)
    return change


def _deep_chain(length):
    """A real tree of ``length`` splits in a chain: each split has a leaf on its left."""
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE

    nodes = np.zeros(2 * length + 1, dtype=PREDICTOR_RECORD_DTYPE)
    splits = np.arange(0, 2 * length, 2)
    nodes["left"][splits], nodes["right"][splits] = splits + 1, splits + 2
    nodes["is_leaf"][1::2], nodes["is_leaf"][-1] = 1, 1
    return nodes


def _set_tree(nodes):
    def change(model):
        model.regressor_._predictors[0][0].nodes = nodes() if callable(nodes) else nodes
    return change


def _leaf_self_loop(model):
    """Mark every node a split, so the walk from the root can only loop or run off the array."""
    nodes = _nodes(model)
    nodes["is_leaf"][:] = 0


def _cycle_to_root(model):
    nodes = _nodes(model)
    split = np.flatnonzero(nodes["is_leaf"] == 0)[-1]
    nodes["right"][split] = 0


def _shared_child(model):
    nodes = _nodes(model)
    nodes["right"][0] = nodes["left"][0]


def _orphan(model):
    """Two splits swap a child: still one parent each, but node order no longer a tree's."""
    nodes = _nodes(model)
    nodes["left"][0], nodes["right"][0] = nodes["right"][0], nodes["left"][0]
    nodes["left"][nodes["left"][0]] = 0


FORGED = [
    # gbm: tree structure
    ("gbm", _set_nodes("left", 0), "children must come after it"),
    ("gbm", _leaf_self_loop, "leaves and"),
    ("gbm", _cycle_to_root, "children must come after it"),
    ("gbm", _shared_child, "exactly one parent|children must come after"),
    ("gbm", _orphan, "children must come after it|exactly one parent"),
    ("gbm", _set_nodes("right", 2**32 - 1), "inside the"),
    ("gbm", _set_nodes("is_leaf", 2), "is_leaf must be 0 or 1"),
    ("gbm", _set_nodes("missing_go_to_left", 7), "missing_go_to_left must be 0 or 1"),
    ("gbm", _set_nodes("is_categorical", 1), "must not split on categories"),
    ("gbm", _set_tree(lambda: _deep_chain(10**6)), "1 to 131,072 nodes"),
    ("gbm", _set_tree(lambda: _deep_chain(3)[:0]), "1 to 131,072 nodes"),
    ("gbm", _set_tree(lambda: np.zeros(7)), "node records|not a readable skops model"),
    ("gbm", _set_tree(lambda: np.zeros((2, 7), dtype=_deep_chain(1).dtype)), "1 to 131,072 nodes"),
    ("gbm", _set_tree(lambda: _deep_chain(2).astype([(n, "<f8") for n in _deep_chain(1).dtype.names])),
     "node records|not a readable skops model"),
    ("gbm", _set_tree("not an array"), "node records|not a readable skops model"),
    # gbm: numbers in the nodes
    ("gbm", _set_nodes("feature_idx", 2**31 - 1), "feature index 2147483647"),
    ("gbm", _set_nodes("feature_idx", -1), "feature index -1"),
    ("gbm", _set_nodes("feature_idx", 19), "below the 19 features"),
    ("gbm", _set_nodes("num_threshold", np.nan), "thresholds must be numbers"),
    ("gbm", _set_nodes("value", np.inf, node=lambda n: int(np.flatnonzero(n["is_leaf"])[0])), "values must be finite"),
    ("gbm", _set_nodes("value", np.nan, node=lambda n: int(np.flatnonzero(n["is_leaf"])[0])), "values must be finite"),
    # gbm: the regressor around the trees
    ("gbm", _set("regressor_.n_features_in_", 40), "n_features_in_"),
    ("gbm", _set("regressor_._n_features", 2**31), "_n_features"),
    ("gbm", _set("regressor_.feature_names_in_", lambda r: r.feature_names_in_[::-1].copy()), "feature_names_in_"),
    ("gbm", _set("regressor_.n_trees_per_iteration_", 10**6), "n_trees_per_iteration_"),
    ("gbm", _set("regressor_._baseline_prediction", np.full((1, 1), np.nan)), "_baseline_prediction"),
    ("gbm", _set("regressor_._baseline_prediction", np.zeros((40000, 1))), "_baseline_prediction"),
    ("gbm", _set("regressor_._predictors", []), "1 to 20,000 boosting iterations"),
    ("gbm", _set("regressor_._predictors", lambda r: r._predictors * 1001), "1 to 20,000 boosting iterations"),
    ("gbm", _set("regressor_._predictors", lambda r: [r._predictors[0] * 2]), "one TreePredictor"),
    ("gbm", _set("regressor_._predictors", lambda r: [r._predictors[0][0]]), "one TreePredictor"),
    ("gbm", _set("regressor_._predictors", lambda r: [[None]]), "one TreePredictor"),
    ("gbm", lambda m: setattr(m.regressor_._predictors[0][0], "raw_left_cat_bitsets", np.zeros((5, 8), np.uint32)),
     "raw_left_cat_bitsets"),
    ("gbm", _set("regressor_.max_iter", 10**12), "max_iter"),
    ("gbm", _set("regressor_.loss", "absolute_error"), "loss"),
    ("gbm", _set("regressor_.is_categorical_", np.ones(19, dtype=bool)), "no categorical features"),
    ("gbm", _set("regressor_.extra_", 1), "attributes the kit never saves"),
    ("gbm", _set("regressor_.train_score_", np.zeros(10**5)), "train_score_"),
    # gbm: binning
    ("gbm", _set("regressor_._bin_mapper.n_bins", 10**9), "n_bins"),
    ("gbm", _set("regressor_._bin_mapper.missing_values_bin_idx_", 10**6), "missing_values_bin_idx_"),
    ("gbm", _set("regressor_._bin_mapper.bin_thresholds_", lambda b: b.bin_thresholds_[:3]), "one threshold array"),
    ("gbm", _set("regressor_._bin_mapper.bin_thresholds_",
                 lambda b: [np.full(3, np.nan)] + b.bin_thresholds_[1:]), "finite numbers"),
    ("gbm", _set("regressor_._bin_mapper.bin_thresholds_",
                 lambda b: [np.arange(1000.0)] + b.bin_thresholds_[1:]), "at most 255 values"),
    ("gbm", _set("regressor_._bin_mapper.bin_thresholds_",
                 lambda b: [np.array([3.0, 1.0])] + b.bin_thresholds_[1:]), "must be sorted"),
    ("gbm", _set("regressor_._bin_mapper.bin_thresholds_",
                 lambda b: [np.array(["a"])] + b.bin_thresholds_[1:]), "array of floats"),
    ("gbm", _set("regressor_._bin_mapper.is_categorical_", np.ones(19, dtype=np.uint8)), "is_categorical_"),
    ("gbm", _set("regressor_._bin_mapper.n_bins_non_missing_", np.full(19, 10**6, dtype=np.uint32)),
     "n_bins_non_missing_"),
    # gbm: the rung's own parameters and state
    ("gbm", _set("bin_width", 1e-300), "bin_width"),
    ("gbm", _set("bin_width", np.inf), "bin_width"),
    ("gbm", _set("tolerance", 1e9), "tolerance"),
    ("gbm", _set("tolerance", -0.1), "tolerance"),
    ("gbm", _set("progress", "yes"), "progress"),
    ("gbm", _set("max_iter", 2**63), "max_iter"),
    ("gbm", _set("max_leaf_nodes", 10**9), "max_leaf_nodes"),
    ("gbm", _set("n_train_pairs_", -1), "n_train_pairs_"),
    ("gbm", _set("n_train_pairs_", True), "n_train_pairs_"),
    ("gbm", _set("fit_seconds_", np.nan), "fit_seconds_"),
    ("gbm", _set("validation_score_", {"rmse": "x"}), "validation_score_"),
    ("gbm", _set("stolen_", "x"), "attributes the kit never saves"),
    ("gbm", _set("feature_names_", lambda m: m.feature_names_ * 2), "feature names"),
    # mean
    ("mean", _set("regressor_.n_outputs_", 40_000), "n_outputs_"),
    ("mean", _set("regressor_.n_outputs_", 10**8), "n_outputs_"),
    ("mean", _set("regressor_.constant_", np.full((1, 40_000), 0.5)), "constant_ must have shape 1x1"),
    ("mean", _set("regressor_.constant_", np.array([[np.nan]])), "finite"),
    ("mean", _set("regressor_.constant_", np.array([[7.0]])), r"lie in \[0.0, 1.0\]"),
    ("mean", _set("regressor_.constant_", np.array([[1]], dtype=np.int64)), "array of floats"),
    ("mean", _set("regressor_.constant_", [[0.5]]), "numpy array"),
    ("mean", _set("regressor_.strategy", "quantile"), "strategy"),
    ("mean", _set("regressor_.n_features_in_", 10**9), "n_features_in_"),
    ("mean", _set("seed", -1), "seed"),
    ("mean", _set("n_pairs", "many"), "n_pairs"),
    # cosine
    ("cosine", _set("calibration_.X_thresholds_", lambda c: np.full_like(c.X_thresholds_, np.nan)), "finite"),
    ("cosine", _set("calibration_.y_thresholds_", lambda c: c.y_thresholds_ * 100), r"\[0.0, 1.0\]"),
    ("cosine", _set("calibration_.y_thresholds_", lambda c: c.y_thresholds_[:-1]), "shape|equal in length"),
    ("cosine", _set("calibration_.X_thresholds_", lambda c: c.X_thresholds_[::-1].copy()), "non-decreasing"),
    ("cosine", _set("calibration_.X_thresholds_", lambda c: np.zeros((2, 2))), "shape|equal in length"),
    ("cosine", _set("calibration_.X_min_", -1e300), "X_min_"),
    ("cosine", _set("calibration_.y_max", 1e9), "y_max"),
    ("cosine", _set("calibration_.out_of_bounds", "nan"), "out_of_bounds"),
    ("cosine", _set("tolerance", 0.0), "tolerance"),
    ("cosine", _set("tolerance", np.nan), "tolerance"),
]


@pytest.mark.parametrize("rung, change, match", FORGED,
                         ids=[f"{rung}-{i}-{match.split('|')[0][:24]}" for i, (rung, _, match) in enumerate(FORGED)])
def test_forged_numbers_inside_allowed_types_are_refused_on_load(saved, tmp_path, rung, change, match):
    import skops.io as sio

    folder = tmp_path / rung
    shutil.copytree(saved[rung], folder)
    model = kit.models.load(folder)
    change(model)
    sio.dump(model, folder / "model.skops")
    message = refused(folder, match)
    assert "Traceback" not in message
    with pytest.raises(UserError, match=match):
        kit.models.check_folder(folder)


CLI_CASES = {case[2]: case for case in FORGED if case[2] in
             ("children must come after it", "feature index 2147483647", "n_outputs_", "bin_width")}


@pytest.mark.parametrize("rung, change, match", list(CLI_CASES.values()), ids=list(CLI_CASES))
def test_forged_numbers_make_kit_predict_exit_2_with_one_line(saved, tmp_path, rung, change, match, capsys):
    import skops.io as sio

    folder = tmp_path / rung
    shutil.copytree(saved[rung], folder)
    model = kit.models.load(folder)
    change(model)
    sio.dump(model, folder / "model.skops")
    refused(folder, match, capsys=capsys)


def test_a_self_looping_tree_would_hang_scikit_learn(saved, spectra):
    """The check is what stands between a forged node and a loop in compiled code."""
    model = kit.models.load(saved["gbm"])
    nodes = _nodes(model)
    nodes["left"][0], nodes["right"][0] = 0, 0
    with pytest.raises(UserError, match="children must come after it"):
        untrusted.check_tree(nodes, 19, "m")


def test_every_real_tree_passes_the_tree_check(saved):
    model = kit.models.load(saved["gbm"])
    for (tree,) in model.regressor_._predictors:
        untrusted.check_tree(tree.nodes, model.regressor_.n_features_in_, "m")
    untrusted.check_tree(_deep_chain(1000), 1, "m")


def test_manifest_claiming_another_rung_is_refused(saved, tmp_path, capsys):
    folder = tmp_path / "gbm"
    shutil.copytree(saved["gbm"], folder)
    for claimed, match in [("mean", "does not save"), ("cosine", "does not save"), ("siamese", "format")]:
        manifest = manifest_of(folder)
        write_manifest(folder, manifest | {"model": claimed})
        refused(folder, match, capsys=capsys if claimed == "siamese" else None)
        write_manifest(folder, manifest)


def test_save_formats_match_the_classes():
    assert kit.models.SAVE_FORMATS == {name: kit.models.get(name).save_format for name in kit.models.available()}


def _fitted_blend_booster():
    """A blend's saved state without its siamese: trees over the gbm's features and the siamese's columns."""
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingRegressor

    from kit.models.blend import SIAMESE_FEATURES, BlendModel
    from kit.models.features import FEATURE_NAMES

    names = FEATURE_NAMES + SIAMESE_FEATURES
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.random((200, len(names))), columns=names)
    model = BlendModel()
    model.regressor_ = HistGradientBoostingRegressor(max_iter=5, random_state=0).fit(x, rng.random(200))
    model.feature_names_ = names
    model.siamese_molecules_, model.booster_molecules_ = np.array(["AAAA"]), np.array(["BBBB"])
    model.n_train_pairs_, model.fitted_, model.fit_seconds_ = 200, True, 1.0
    return model


@pytest.mark.parametrize("change, match", [
    (_set_nodes("left", 0), "children must come after it"),
    (_set_nodes("feature_idx", 2**31 - 1), "feature index 2147483647"),
    (_set("regressor_.n_features_in_", 19), "n_features_in_"),
    (_set("booster_molecules_", np.zeros(3)), "array of strings"),
    (_set("mc_samples", 10**9), "mc_samples"),
])
def test_the_blend_checks_its_trees_with_the_gbms_checker(change, match):
    model = _fitted_blend_booster()
    model.check_loaded_state("m")
    change(model)
    with pytest.raises(UserError, match=match):
        model.check_loaded_state("m")
