"""Saved models: one ``.npz`` file of arrays, with the rest described in JSON inside it. No pickle.

The format (version 1). An ``.npz`` (a zip of ``.npy`` arrays, as ``numpy.savez`` writes)
holding:

- ``__hml__``: UTF-8 JSON, as a uint8 array. It holds ``format`` ("hml-model"),
  ``format_version``, ``versions`` (hml, NumPy and the fitted backend's library),
  ``fitted_on`` (backend and device, for the record) and the model: ``class``, ``params``
  (the ``__init__`` arguments) and ``state`` (the fitted ``*_`` attributes).
- ``a0``, ``a1``, ...: the arrays that ``params`` and ``state`` refer to by name, in NumPy
  dtypes only (floats, integers, booleans, unicode strings): :func:`hml.load` reads them with
  ``allow_pickle=False``, so a file can hold no code to run.

Values in ``params`` and ``state`` are tagged JSON: ``{"json": v}`` for numbers, strings,
booleans and None; ``{"array": name, "on": "device" | "host"}``; ``{"list": [...]}``;
``{"dict": [[key, value], ...]}`` (each tagged: a ``class_weight``'s labels may be numbers);
``{"dtype": "float64"}``; ``{"estimator": {"class", "params", "state"}}`` for a fitted
sub-estimator (``feature_transformer_``). Device arrays are the model's computed state
(moved onto the backend it is loaded on); host arrays stay NumPy on every backend (class
labels, feature names).

Loading checks what it reads before it builds a model: the format and its version, the
class against hml's estimators, the parameter names (exactly the class's), the attributes'
names (a fitted attribute's form: ``coef_``, never a dunder or a method), every array's dtype
(the model's float dtype; integers for cluster labels), and at the end that the model
predicts on two rows, finitely and with one probability per class -- so a tampered file
gives a ValueError that names what is wrong, never a model that is silently wrong.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from hml import backends
from hml._files import atomic_file

__all__ = ["FORMAT_VERSION", "load", "save"]

FORMAT = "hml-model"
#: The version this hml writes; it reads every version up to this one.
FORMAT_VERSION = 1
_METADATA = "__hml__"
#: Fitted attributes that stay NumPy on every backend (labels may be strings).
_HOST = frozenset({"classes_", "feature_names_in_"})
#: Fitted attributes on the device that hold integers (cluster indices); every other device array
#: holds floats of the model's dtype.
_INTEGER_STATE = frozenset({"labels_"})
#: A fitted attribute's name: ``coef_``, ``_whitening_``; not a dunder, not a method's name.
_STATE_NAME = re.compile(r"^_?[a-z][a-z0-9_]*[a-z0-9]_$")
_FLOATS = ("float32", "float64")


#: hml's estimator classes by name: the only classes a file can name. ``hml.base`` registers
#: every ``BaseEstimator`` subclass defined in hml as it is created.
_CLASSES: dict[str, type[Any]] = {}


def register(cls: type[Any]) -> type[Any]:
    """Let files name ``cls``: hml's estimators register as they are defined; an estimator class written
    elsewhere (on :class:`hml.base.BaseEstimator`) registers itself to save and load like them."""
    _CLASSES[cls.__name__] = cls
    return cls


def _estimator_classes() -> dict[str, type[Any]]:
    return dict(_CLASSES)


def _is_estimator(value: Any) -> bool:
    return type(value) in _CLASSES.values()


# -- saving --------------------------------------------------------------------------------
def save(model: Any, path: str | os.PathLike[str]) -> Path:
    """Write the fitted ``model`` to ``path`` (any name; ``.npz`` is conventional), atomically.

    The file is written beside ``path`` under a temporary name and renamed into place, so
    ``path`` is either the complete new file or what it was before -- never a partial file,
    even when the disk fills up or the process is interrupted.
    """
    model._check_fitted()
    arrays: dict[str, np.ndarray] = {}
    ctx = model._ctx_
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "versions": {"hml": _hml_version(), "numpy": np.__version__, ctx.backend.name: ctx.backend.version()},
        "fitted_on": {"backend": ctx.backend.name, "device": None if ctx.device is None else str(ctx.device)},
        "model": _describe(model, arrays),
    }
    buffer = io.BytesIO()
    arrays[_METADATA] = np.frombuffer(json.dumps(metadata).encode("utf-8"), dtype=np.uint8)
    np.savez(buffer, **arrays)  # type: ignore[arg-type]  # keys a0, a1, ..., __hml__: never savez's allow_pickle
    return _write_atomically(Path(path), buffer.getvalue())


def _hml_version() -> str:
    # The package, always imported before its submodules (an import statement here would
    # reach up to the top layer).
    return str(getattr(sys.modules["hml"], "__version__", "unknown"))


def _write_atomically(path: Path, data: bytes) -> Path:
    created = False
    try:
        with atomic_file(path) as (file, _):
            created = True
            file.write(data)
    except OSError as error:
        if not created:
            raise OSError(
                error.errno,
                f"cannot save the model to {str(path)!r}: cannot create a file in "
                f"{str(path.parent)!r} ({error.strerror}); choose a writable directory",
            ) from error
        fix = "give a file name, not a directory" if path.is_dir() else "free some space or choose another directory"
        raise OSError(
            error.errno,
            f"cannot save the model to {str(path)!r}: {error.strerror or error}; nothing was written ({fix})",
        ) from error
    return path


def _describe(estimator: Any, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """``estimator``'s class, parameters and fitted state as tagged JSON, its arrays added to ``arrays``."""
    params = {}
    for name, value in estimator.get_params().items():
        try:
            params[name] = _encode(value, arrays, on="host")
        except TypeError as error:
            raise TypeError(
                f"cannot save {type(estimator).__name__}'s parameter {name}={value!r}: {error}; "
                f"set it to a value hml can save (model.set_params({name}=...)) first"
            ) from None
    state = {}
    for name, value in vars(estimator).items():
        if name == "_ctx_" or not _STATE_NAME.match(name):
            continue
        try:
            state[name] = _encode(value, arrays, on="host" if name in _HOST else "device")
        except TypeError as error:
            raise TypeError(f"cannot save {type(estimator).__name__}.{name}: {error}") from None
    return {"class": type(estimator).__name__, "params": params, "state": state}


def _encode(value: Any, arrays: dict[str, np.ndarray], on: str) -> dict[str, Any]:
    if value is None or isinstance(value, (bool, str)):
        return {"json": value}
    if isinstance(value, (int, float, np.integer, np.floating, np.bool_)) and not backends.is_array(value):
        return {"json": value.item() if isinstance(value, np.generic) else value}
    if isinstance(value, (list, tuple)):
        return {"list": [_encode(item, arrays, on) for item in value]}
    if isinstance(value, dict):
        return {"dict": [[_encode(key, arrays, on), _encode(item, arrays, on)] for key, item in value.items()]}
    if _is_estimator(value):
        return {"estimator": _describe(value, arrays)}
    if (dtype := _dtype_name(value)) is not None:
        return {"dtype": dtype}
    if isinstance(value, np.ndarray) or backends.is_array(value):
        host = value if isinstance(value, np.ndarray) else backends.backend_of(value).to_numpy(value)
        encoded: dict[str, Any] = {"on": on}
        if host.dtype == object:  # feature names: strings, saved as a unicode array
            if not all(isinstance(item, str) for item in host.ravel()):
                raise TypeError("an array of Python objects other than strings")
            host, encoded["object"] = host.astype(str), True
        _check_dtype(host.dtype, "the array")
        name = f"a{len(arrays)}"
        arrays[name] = np.ascontiguousarray(host)
        encoded["array"] = name
        return encoded
    device = _device_name(value)
    if device is not None:
        return {"json": device}
    raise TypeError(f"a {type(value).__name__}, which the format has no place for")


def _dtype_name(value: Any) -> str | None:
    """ "float32"/"float64" for a float dtype of any library (``np.float64``, ``torch.float64``,
    ``array_api_strict.float64``, ``np.dtype("float64")``); None for anything else."""
    if isinstance(value, (str, np.ndarray, np.generic)) or backends.is_array(value):
        return None
    text = str(value)
    for name in _FLOATS:
        if text in (name, f"<class 'numpy.{name}'>") or text.endswith("." + name):
            return name
    return None


def _device_name(value: Any) -> str | None:
    """A device object (``torch.device``) as the string its library parses back; else None."""
    kind = type(value).__name__
    return str(value) if kind == "device" else None


def _check_dtype(dtype: np.dtype, what: str) -> None:
    if dtype.kind not in "fiubU" or (dtype.kind == "f" and dtype.name not in _FLOATS):
        raise TypeError(f"{what} has dtype {dtype}, which the format does not hold")


# -- loading -------------------------------------------------------------------------------
# Any: the model's class is the file's (one of hml's estimators), known once the file is read.
def load(path: str | os.PathLike[str], *, backend: str | None = None, device: Any = None) -> Any:
    """The model saved in ``path``, with its state on ``backend`` and ``device``.

    ``backend=None`` loads onto the backend the model was fitted on, at its default device
    (a model fitted on a GPU loads there; pass ``backend="numpy"`` on a machine without
    one). Predictions are bit-identical on the backend the model was saved from, and agree
    to rounding (1e-12 relative in float64) on the others.
    """
    metadata, arrays = _read(Path(path))
    target = backend if backend is not None else metadata["fitted_on"]["backend"]
    model = _build(metadata["model"], arrays, backends.resolve(target, device), str(path))
    return _followed(model, backend, device) if backend is not None else model


def moved(model: Any, backend: str, device: Any = None) -> Any:
    """A new fitted estimator with ``model``'s state on ``backend``/``device`` (``model`` unchanged)."""
    model._check_fitted()
    arrays: dict[str, np.ndarray] = {}
    description = _describe(model, arrays)
    copy = _build(description, arrays, backends.resolve(backend, device), f"{type(model).__name__}.to()")
    return _followed(copy, backend, device)


def _followed(model: Any, backend: str, device: Any) -> Any:
    """``model`` with a ``backend``/``device`` parameter that was set explicitly pointing where
    its state now lives (None and "auto" are left: they already follow the input)."""
    params = model.get_params()
    if params.get("backend") not in (None, backends.AUTO):
        model.set_params(backend=backend)
    if params.get("device") is not None:
        model.set_params(device=device)
    return model


def _read(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    def refused(reason: str) -> ValueError:
        return ValueError(f"cannot load {str(path)!r} as an hml model: {reason}")

    with open(path, "rb") as file:
        magic = file.read(4)
    if magic != b"PK\x03\x04":  # np.load would take anything but a zip or an .npy for a pickle
        if magic[:1] == b"\x80":
            raise refused("it holds pickled data, which hml never writes and does not read")
        raise refused("the file is damaged or truncated, or not an .npz")
    try:
        with zipfile.ZipFile(path) as archive:  # a truncated zip fails here, before NumPy reads it
            archive.infolist()
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except Exception as error:  # a damaged zip raises BadZipFile, EOFError, ValueError, zlib.error, ...
        if "pickle" in str(error).lower():
            raise refused(f"it holds pickled data, which hml never writes and does not read (numpy: {error})") from None
        raise refused(f"the file is damaged or truncated ({type(error).__name__}: {error})") from None
    if _METADATA not in arrays:
        raise refused(f"it has no {_METADATA!r} entry (not written by hml.save)")
    try:
        metadata = json.loads(arrays.pop(_METADATA).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise refused(f"its {_METADATA!r} entry is not JSON ({type(error).__name__}: {error})") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise refused(
            f"its format is {metadata.get('format') if isinstance(metadata, dict) else metadata!r}, not {FORMAT!r}"
        )
    version = metadata.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise refused(f"its format_version {version!r} is not a version")
    if version > FORMAT_VERSION:
        raise refused(
            f"it was written in format version {version} by hml {metadata.get('versions', {}).get('hml')}; "
            f"this hml ({_hml_version()}) reads up to version {FORMAT_VERSION} -- upgrade hml to load it"
        )
    for name, array in arrays.items():
        try:
            _check_dtype(array.dtype, f"array {name!r}")
        except TypeError as error:
            raise refused(str(error)) from None
    if not isinstance(metadata.get("model"), dict) or not isinstance(metadata.get("fitted_on"), dict):
        raise refused("its description has no 'model' or 'fitted_on'")
    if not isinstance(metadata["fitted_on"].get("backend"), str):
        raise refused(f"its 'fitted_on' names no backend (got {metadata['fitted_on'].get('backend')!r})")
    return metadata, arrays


def _build(
    description: dict[str, Any], arrays: dict[str, np.ndarray], ctx: backends.ComputeContext, source: str
) -> Any:
    def refused(reason: str) -> ValueError:
        return ValueError(f"cannot load {source!r} as an hml model: {reason}")

    decoder = _Decoder(arrays, ctx, refused)
    model = decoder.estimator(description)
    if decoder.unused():
        raise refused(f"arrays {sorted(decoder.unused())} are not part of the model")
    _check_predicts(model, refused)
    return model


class _Decoder:
    def __init__(self, arrays: dict[str, np.ndarray], ctx: backends.ComputeContext, refused: Any):
        self.arrays, self.ctx, self.refused = arrays, ctx, refused
        self.used: set[str] = set()
        self.dtype: Any = None  # the model's float dtype, once read

    def unused(self) -> set[str]:
        return set(self.arrays) - self.used

    def estimator(self, description: Any) -> Any:
        classes = _estimator_classes()
        if not isinstance(description, dict) or set(description) != {"class", "params", "state"}:
            raise self.refused("a model's description must hold exactly 'class', 'params' and 'state'")
        name = description["class"]
        if not isinstance(name, str) or name not in classes:
            raise self.refused(f"unknown class {name!r}; hml's estimators are {sorted(classes)}")
        cls = classes[name]
        params, state = description["params"], description["state"]
        if not isinstance(params, dict) or not isinstance(state, dict):
            raise self.refused(f"{name}'s params and state must be JSON objects")
        expected = set(cls._param_names())
        if set(params) != expected:
            raise self.refused(f"{name}'s parameters are {sorted(expected)}, the file has {sorted(params)}")
        model = cls(**{key: self.value(value, f"{name}.{key}", params_=True) for key, value in params.items()})
        dtype = state.get("_dtype_")
        if not isinstance(dtype, dict) or dtype.get("dtype") not in _FLOATS:
            raise self.refused(f"{name}'s state has no float _dtype_ (got {dtype!r})")
        self.dtype = dtype["dtype"]
        if self.dtype == "float64" and not self.ctx.backend.supports_float64(self.ctx.device):
            raise self.refused(
                f"the model computes in float64, which {self.ctx.backend.name} on device "
                f"{self.ctx.device!r} does not support; load it on another backend or device, or "
                "refit it with dtype='float32' and save that"
            )
        for key, value in state.items():
            if not isinstance(key, str) or not _STATE_NAME.match(key):
                raise self.refused(f"{key!r} is not a fitted attribute's name")
            setattr(model, key, self.value(value, f"{name}.{key}", integers=key in _INTEGER_STATE))
        model._ctx_ = self.ctx
        return model

    def value(self, encoded: Any, where: str, params_: bool = False, integers: bool = False) -> Any:
        if (
            not isinstance(encoded, dict)
            or len(set(encoded) & {"json", "list", "dict", "estimator", "dtype", "array"}) != 1
        ):
            raise self.refused(f"{where} is not a tagged value: {str(encoded)[:80]}")
        if "json" in encoded:
            value = encoded["json"]
            if isinstance(value, (dict, list)):
                raise self.refused(f"{where} holds a JSON {type(value).__name__} where a number or string belongs")
            return value
        if "list" in encoded:
            if not isinstance(encoded["list"], list):
                raise self.refused(f"{where}'s list is not a list")
            return [self.value(item, f"{where}[{i}]", params_, integers) for i, item in enumerate(encoded["list"])]
        if "dict" in encoded:
            pairs = encoded["dict"]
            if not isinstance(pairs, list) or not all(isinstance(pair, list) and len(pair) == 2 for pair in pairs):
                raise self.refused(f"{where}'s dict is not a list of [key, value] pairs")
            keys = [self.value(key, f"{where} key", params_) for key, _ in pairs]
            if not all(isinstance(key, (str, int, float)) for key in keys):
                raise self.refused(f"{where}'s keys must be numbers or strings")
            return {
                key: self.value(v, f"{where}[{key!r}]", params_, integers)
                for key, (_, v) in zip(keys, pairs, strict=True)
            }
        if "estimator" in encoded:
            ctx_dtype = self.dtype
            inner = self.estimator(encoded["estimator"])
            self.dtype = ctx_dtype
            return inner
        if "dtype" in encoded:
            if encoded["dtype"] not in _FLOATS:
                raise self.refused(f"{where} names dtype {encoded['dtype']!r}; the format holds {list(_FLOATS)}")
            return encoded["dtype"] if params_ else getattr(self.ctx.xp, encoded["dtype"])
        return self.array(encoded, where, params_, integers)

    def array(self, encoded: dict[str, Any], where: str, params_: bool, integers: bool) -> Any:
        name = encoded["array"]
        if not isinstance(name, str) or name not in self.arrays or name in self.used:
            raise self.refused(
                f"{where} refers to array {name!r}, which the file "
                f"{'uses twice' if isinstance(name, str) and name in self.used else 'does not hold'}"
            )
        self.used.add(name)
        host = self.arrays[name]
        if encoded.get("object"):
            host = host.astype(object)
        if params_ or encoded.get("on") == "host":
            return host
        if encoded.get("on") != "device":
            raise self.refused(f"{where}: 'on' must be 'device' or 'host'")
        if integers and host.dtype.kind not in "iu":
            raise self.refused(f"{where} is {host.dtype}, where it holds integers")
        if not integers and host.dtype.name != self.dtype:
            raise self.refused(f"{where} is {host.dtype}, but the model computes in {self.dtype}")
        if self.ctx.backend.lazy:  # Dask: fitted state is concrete, in the chunks' library
            return host
        return self.ctx.asarray(host)


def _check_predicts(model: Any, refused: Any) -> None:
    """The arrays must fit together: the model's own prediction on two rows of zeros, checked
    for its shape, and a classifier's probabilities, one column per class of ``classes_``. A
    tampered shape shows up here instead of at the user's first predict."""
    n_features = getattr(model, "n_features_in_", None)
    if not isinstance(n_features, int) or isinstance(n_features, bool) or n_features < 1:
        raise refused(f"n_features_in_ is {n_features!r}, not a positive int")
    # score_samples first: an anomaly detector without a threshold yet has no predict to probe.
    method = next(name for name in ("score_samples", "predict", "transform") if hasattr(model, name))
    names = getattr(model, "feature_names_in_", None)
    if names is not None and (names.ndim != 1 or len(names) != n_features):
        raise refused(f"feature_names_in_ has shape {names.shape} for {n_features} features")
    classes = getattr(model, "classes_", None)
    probe = np.zeros((2, n_features))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "X has no feature names": the probe is a plain array
            out = getattr(model, method)(probe)
            proba = model.predict_proba(probe) if classes is not None else None
    except Exception as error:
        raise refused(
            f"its arrays do not fit together: {method} on {n_features} features raised {type(error).__name__}: {error}"
        ) from None
    # A prediction or probability is finite for finite weights (a transform of far-off data may not be).
    for name, values in ((method, out if method == "predict" else None), ("predict_proba", proba)):
        host = None if values is None else backends.to_numpy(values)
        if host is not None and host.dtype.kind == "f" and not np.isfinite(host).all():
            raise refused(f"its {name} of two rows of zeros is not finite: the file holds NaN or infinite weights")
    columns = None if proba is None else proba.shape[1]
    if getattr(out, "shape", (None,))[0] != 2:
        raise refused(f"its arrays do not fit together: {method} of 2 rows gave shape {getattr(out, 'shape', None)}")
    if classes is not None and (getattr(classes, "ndim", 0) != 1 or columns != classes.shape[0]):
        raise refused(
            f"its arrays do not fit together: classes_ has shape {getattr(classes, 'shape', None)}, "
            f"the model has {columns} outputs"
        )
