"""Saving a siamese (manifest and ``model.weights.h5``) and loading one as untrusted input."""
import math
import tempfile
from pathlib import Path

import keras
import numpy as np

from kit.data import binning
from kit.errors import UserError, first_line
from kit.models.siamese.batches import ADDUCT_FEATURES, METADATA_FEATURES
from kit.models.siamese.calibration import MAX_CALIBRATION_POINTS, _is_number
from kit.models.siamese.network import build_siamese
from kit.models.untrusted import (
    check_fields,
    extract_member,
    file_inside,
    weight_shapes,
)
from kit.safetext import printable

#: The network's weights, in Keras' HDF5 format: all a saved siamese holds beside its manifest.
WEIGHTS_FILE = "model.weights.h5"
#: What earlier saves held instead: a Keras zip (``model.keras``) of ``config.json``, which
#: is never read, and the same weights file, which is.
LEGACY_FILE_SUFFIX = ".keras"


class SiamesePersistence:
    """What :class:`~kit.models.siamese.estimator.SiameseModel` adds to a rung's save and load.

    The weights alone go to :data:`WEIGHTS_FILE`; the manifest's parameters rebuild the
    network on load, and every field and weight read back is checked first.
    """

    def _save_state(self, folder):
        # Weights only: the manifest's parameters rebuild the network (_load_state). A fresh
        # siamese around the same layers, as a dense fit's siamese_ is the compiled
        # trainer, whose optimiser state Keras would save too.
        build_siamese(self.embedding_network_, self.head_).save_weights(folder / WEIGHTS_FILE)
        return {
            "format": "keras",
            "file": WEIGHTS_FILE,
            "binning": self.binning_settings(),
            "metadata_features": self._metadata_names(),
            "history": self.history_,
            "best_epoch": self.best_epoch_,
            "best_val_rmse": self.best_val_rmse_,
            "n_train_spectra": self.n_train_spectra_,
            "n_validation_spectra": self.n_validation_spectra_,
            "n_replicas": getattr(self, "n_replicas_", 1),
            "calibration": getattr(self, "calibration_", None),
        }

    @classmethod
    def _load_state(cls, folder, manifest):
        """Rebuild the model from its manifest, then read the network's weights (untrusted input).

        No Keras config is read: the manifest's fields and parameters are checked (the
        parameters bound the network's size), the network is built from them with
        :func:`build_embedding_network` and :func:`build_siamese`, and only weights are
        read into it, from an HDF5 file whose every dataset must have the shape the built
        network needs (:func:`kit.models.untrusted.weight_shapes`, before a value is
        read). An earlier save's ``model.keras`` gives up its weights file alone.
        """


        where = printable(folder)
        check_fields(manifest, _MANIFEST_FIELDS, where)
        model = cls._from_manifest(manifest, where)
        model.calibration_ = _checked_calibration(manifest.get("calibration"), model.calibrate, where)
        name = manifest.get("file", WEIGHTS_FILE)
        legacy = name.endswith(LEGACY_FILE_SUFFIX)
        if not (legacy or name.endswith(WEIGHTS_FILE)):
            raise UserError(f"{where}: manifest file {printable(repr(name), 80)} must be the network's "
                            f"{WEIGHTS_FILE} (or an earlier save's model{LEGACY_FILE_SUFFIX})")
        file = file_inside(folder, name, "network weights file")
        n_weights = model._n_weights(model._check_params(), model._n_bins())
        with tempfile.TemporaryDirectory(prefix="kit-siamese-") as scratch:
            weights = _legacy_weights(file, Path(scratch) / WEIGHTS_FILE, n_weights) if legacy else file
            model._read_weights(weights, n_weights, Path(scratch), shown=file, legacy=legacy)
        model.history_ = manifest.get("history") or {}
        model.best_epoch_ = manifest.get("best_epoch")
        model.best_val_rmse_ = manifest.get("best_val_rmse")
        if manifest.get("validation_score") is not None:
            model.validation_score_ = manifest["validation_score"]
        model.fit_seconds_ = manifest.get("fit_seconds")
        model.n_train_spectra_ = manifest.get("n_train_spectra")
        model.n_validation_spectra_ = manifest.get("n_validation_spectra")
        model.n_replicas_ = manifest.get("n_replicas") or 1
        model.fitted_ = True
        return model

    @classmethod
    def _from_manifest(cls, manifest, where):
        """An unfitted model with the manifest's parameters and binning, all checked."""
        names = cls._get_param_names()
        params = {k: v for k, v in (manifest.get("params") or {}).items() if k in names}
        for key in ("hidden_units", "mz_range", "head_units"):
            if isinstance(params.get(key), list):
                params[key] = tuple(params[key])
        # A siamese saved before heads (or calibration) existed has none.
        params.setdefault("head_units", ())
        params.setdefault("calibrate", False)
        model = cls(**params)
        metadata = manifest.get("metadata_features") or []
        expected = [list(METADATA_FEATURES), list(ADDUCT_FEATURES)]
        if metadata not in ([], *expected):
            raise UserError(f"{where}: manifest metadata_features must be [], {expected[0]} or {expected[1]}, "
                            f"found {printable(repr(metadata), 80)}")
        model.use_metadata = bool(metadata)
        # Models saved before adduct inputs existed read the plain metadata.
        model.metadata_features_ = list(metadata)
        history = manifest.get("history") or {}
        if not all(isinstance(v, list) and all(x is None or _is_number(x) for x in v) for v in history.values()):
            raise UserError(f"{where}: manifest history must map each metric to a list of numbers")
        try:
            model._check_params()
        except (TypeError, ValueError) as exc:  # UserError is a ValueError
            raise UserError(f"{where}: unusable parameters in the manifest ({printable(exc, 200)})") from None
        # The network reads as many bins as the parameters' binning gives; the manifest's
        # record of the binning must be the same settings.
        try:
            recorded = binning.binning_settings(**manifest["binning"])
        except (TypeError, ValueError) as exc:
            raise UserError(f"{where}: unusable binning settings {printable(repr(manifest['binning']), 120)} "
                            f"({printable(exc, 120)})") from None
        if recorded != model.binning_settings():
            raise UserError(f"{where}: manifest binning {printable(repr(recorded), 120)} disagrees with the binning "
                            f"parameters {model.binning_settings()}: expected the files saved together by the siamese "
                            "rung")
        model.bin_width, model.mz_range = recorded["bin_width"], tuple(recorded["mz_range"])
        model.intensity_power = recorded["intensity_power"]
        return model

    def _read_weights(self, file, n_weights, scratch, shown, legacy=False):
        """Build the network from the parameters and read ``file``'s weights into it, shapes checked first.

        ``shown`` names the file in messages (the ``model.keras`` an extracted file came from).
        """
        where = printable(shown)
        retrain = " (saved by an earlier kit? retrain the model)" if legacy else ""
        # Metadata only, before anything is built: what the file declares is bounded by the parameters.
        try:
            found = weight_shapes(file, n_weights, "siamese weights file", unread=("optimizer",) if legacy else (),
                                  where=where)
        except UserError as exc:
            raise UserError(f"{exc}{retrain}") from None
        declared = sum(math.prod(shape) for shape in found.values())
        if declared != n_weights:
            raise UserError(f"{where}: holds {declared:,} weights but the network built from the manifest's parameters "
                            f"has {n_weights:,}: expected the files saved together by the siamese rung{retrain}")
        network, head = self._new_network(self._n_bins()), self._new_head()
        siamese = build_siamese(network, head)
        # What Keras itself writes for the network just built: the exact layout to read.
        siamese.save_weights(scratch / f"expected-{WEIGHTS_FILE}")
        expected = weight_shapes(scratch / f"expected-{WEIGHTS_FILE}", n_weights)
        for path in sorted(set(found) | set(expected)):
            if found.get(path) != expected.get(path):
                needs = "no such dataset" if path not in expected else f"shape {expected[path]}"
                has = "lacks it" if path not in found else f"has shape {found[path]}"
                raise UserError(f"{where}: dataset {printable(repr(path), 80)} {has} but the network built from the "
                                f"manifest's parameters needs {needs}{retrain}")
        try:
            siamese.load_weights(file)
        except Exception as exc:  # noqa: BLE001 - h5py and Keras raise many types for a damaged file
            raise UserError(f"{where}: not a readable siamese weights file ({type(exc).__name__}: "
                            f"{printable(first_line(exc), 120)}){retrain}") from None
        for layer in (*network.layers, *([head] if head is not None else [])):
            for weight in layer.weights:
                values = keras.ops.convert_to_numpy(weight)
                if not np.isfinite(values).all():
                    raise UserError(f"{where}: weight {printable(weight.path, 80)} holds values that are not finite "
                                    "(NaN or infinite): expected a network trained by the siamese rung")
            if isinstance(layer, keras.layers.BatchNormalization) and (
                    keras.ops.convert_to_numpy(layer.moving_variance) < 0).any():
                raise UserError(f"{where}: {printable(layer.name, 40)} has a negative moving variance: expected a "
                                "network trained by the siamese rung")
        self.embedding_network_, self.siamese_, self.head_ = network, siamese, head


def _legacy_weights(file, target, n_weights):
    """The weights file inside an earlier save's ``model.keras`` (its config is never read), copied to ``target``."""
    # float32 weights, and an optimiser's two moments beside them when the network was
    # compiled, plus HDF5's own bookkeeping.
    return extract_member(file, WEIGHTS_FILE, target, 12 * n_weights + (32 << 20),
                          "siamese network saved by an earlier kit (retrain it if it is refused)")


#: Fields the siamese rung adds to a manifest and their JSON types (``!``: required).
_MANIFEST_FIELDS = {
    "binning": "dict!",
    "metadata_features": "list|null",
    "history": "dict|null",
    "best_epoch": "int|null",
    "best_val_rmse": "number|null",
    "n_train_spectra": "int|null",
    "n_validation_spectra": "int|null",
    "n_replicas": "int|null",
    "calibration": "dict|null",
}


def _checked_calibration(calibration, calibrate, where):
    """A manifest's calibration map (untrusted), checked as :func:`fit_calibration` writes it."""
    if not calibrate:
        if calibration is not None:
            raise UserError(f"{where}: the manifest holds a calibration map but its calibrate parameter is false: "
                            "expected the files saved together by the siamese rung")
        return None
    if calibration is None:
        raise UserError(f"{where}: the manifest's calibrate parameter is true but it holds no calibration map: "
                        "expected the files saved together by the siamese rung")
    x, y = calibration.get("x"), calibration.get("y")
    if set(calibration) != {"x", "y"} or not isinstance(x, list) or not isinstance(y, list):
        keys = ", ".join(printable(key, 40) for key in sorted(map(str, calibration))[:5])
        raise UserError(f"{where}: manifest calibration must be {{\"x\": [...], \"y\": [...]}}, found the keys "
                        f"[{keys}]")
    if not 1 <= len(x) == len(y) <= MAX_CALIBRATION_POINTS or not all(map(_is_number, x + y)):
        raise UserError(f"{where}: manifest calibration x and y must be two lists of the same length (1 to "
                        f"{MAX_CALIBRATION_POINTS:,} numbers), found {len(x):,} and {len(y):,} entries")
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    # Not finite, out of [0, 1] or decreasing: not an isotonic map of similarities.
    if not (np.isfinite(x).all() and (np.diff(x) >= 0).all() and (np.diff(y) >= 0).all()
            and (y >= 0).all() and (y <= 1).all()):
        raise UserError(f"{where}: manifest calibration must rise (x and y never decreasing, y within [0, 1], "
                        "all finite): expected the map the siamese rung fits")
    return {"x": x.tolist(), "y": y.tolist()}

