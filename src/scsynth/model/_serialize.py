"""Model attributes as JSON plus numeric arrays: a saved model holds data, never pickled objects.

:func:`encode` turns an attribute value (plain Python data, numpy arrays and scalars, pandas frames, series
and indexes, tensors) into JSON-ready data, moving numeric arrays into ``arrays`` (saved with safetensors).
:func:`decode` is its exact inverse and knows only the tags written here, so reading a file never builds an
arbitrary object. Anything else fails at save time, naming the attribute, rather than at load time.
"""

from __future__ import annotations

import math
from collections import OrderedDict, defaultdict
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import pandas as pd
import torch

TAG = "@type"
#: numpy dtype kinds stored as binary arrays (safetensors); strings and objects go into the JSON.
_BINARY_KINDS = "biuf"
_FACTORIES = {"dict": dict, "list": list, "set": set, "int": int, "float": float, "str": str}


def encode(value: Any, arrays: dict[str, np.ndarray], where: str = "value") -> Any:
    """JSON-ready form of ``value``; numeric arrays are added to ``arrays`` and referenced by key.

    Raises
    ------
    TypeError
        For a type that a model file cannot hold, naming ``where`` (the attribute path).
    """
    if value is None or isinstance(value, (bool, int, str)) and not isinstance(value, np.generic):
        return value
    if isinstance(value, float) and not isinstance(value, np.generic):
        return value if math.isfinite(value) else {TAG: "float", "value": repr(value)}
    if isinstance(value, np.str_):
        return str(value)
    if value is pd.NA:
        return {TAG: "NA"}
    if isinstance(value, np.generic):
        if value.dtype.kind not in _BINARY_KINDS:
            raise TypeError(f"Cannot save {where}: numpy scalar of dtype {value.dtype}.")
        return {TAG: "scalar", "dtype": value.dtype.str, "value": encode(value.item(), arrays, where)}
    if isinstance(value, torch.Tensor):
        return {TAG: "tensor", "array": _encode_array(value.detach().cpu().numpy(), arrays, where)}
    if isinstance(value, np.ndarray):
        return _encode_array(value, arrays, where)
    if isinstance(value, pd.DataFrame):
        return {TAG: "DataFrame", "index": _encode_index(value.index, arrays, f"{where}.index"),
                "columns": _encode_index(value.columns, arrays, f"{where}.columns"),
                "data": [_encode_column(value.iloc[:, i], arrays, f"{where}[{i}]") for i in range(value.shape[1])]}
    if isinstance(value, pd.Series):
        return {TAG: "Series", "index": _encode_index(value.index, arrays, f"{where}.index"),
                "name": encode(value.name, arrays, f"{where}.name"),
                "data": _encode_column(value, arrays, where)}
    if isinstance(value, pd.Index):
        return _encode_index(value, arrays, where)
    if isinstance(value, PurePath):
        return {TAG: "path", "value": str(value)}
    if isinstance(value, tuple):
        return {TAG: "tuple", "items": [encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, (set, frozenset)):
        items = sorted(value, key=repr)  # sets have no order: sort so that files are reproducible
        return {TAG: type(value).__name__, "items": [encode(v, arrays, f"{where}{{}}") for v in items]}
    if isinstance(value, list):
        return [encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return _encode_dict(value, arrays, where)
    raise TypeError(
        f"Cannot save {where} of type {type(value).__module__}.{type(value).__qualname__}: model files hold only "
        "tensors and JSON-able data (numbers, strings, lists, dicts, numpy arrays, pandas tables)."
    )


def decode(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    """Inverse of :func:`encode`; unknown tags raise ``ValueError``."""
    if isinstance(value, list):
        return [decode(v, arrays) for v in value]
    if not isinstance(value, dict):
        return value
    if TAG not in value:
        return {k: decode(v, arrays) for k, v in value.items()}
    kind = value[TAG]
    if kind == "float":
        return float(value["value"])
    if kind == "NA":
        return pd.NA
    if kind == "scalar":
        return np.dtype(_safe_dtype(value["dtype"])).type(decode(value["value"], arrays))
    if kind == "ndarray":
        return _decode_array(value, arrays)
    if kind == "tensor":
        return torch.from_numpy(np.array(_decode_array(value["array"], arrays)))
    if kind == "DataFrame":
        columns = [_decode_column(c, arrays) for c in value["data"]]
        frame = pd.DataFrame(dict(enumerate(columns)), index=_decode_index(value["index"], arrays))
        frame.columns = _decode_index(value["columns"], arrays)
        return frame
    if kind == "Series":
        return pd.Series(_decode_column(value["data"], arrays), index=_decode_index(value["index"], arrays),
                         name=decode(value["name"], arrays))
    if kind in ("Index", "RangeIndex", "CategoricalIndex"):
        return _decode_index(value, arrays)
    if kind == "path":
        return Path(value["value"])
    if kind == "tuple":
        return tuple(decode(v, arrays) for v in value["items"])
    if kind in ("set", "frozenset"):
        return (set if kind == "set" else frozenset)(decode(v, arrays) for v in value["items"])
    if kind in ("dict", "OrderedDict", "defaultdict"):
        items = [(decode(k, arrays), decode(v, arrays)) for k, v in value["items"]]
        if kind == "OrderedDict":
            return OrderedDict(items)
        if kind == "defaultdict":
            factory = value.get("factory")
            if factory is not None and factory not in _FACTORIES:
                raise ValueError(f"Unknown defaultdict factory {factory!r} in a saved model.")
            return defaultdict(_FACTORIES.get(factory), items)
        return dict(items)
    raise ValueError(f"Unknown entry type {kind!r} in a saved model; it was written by another program.")


# -- dicts -----------------------------------------------------------------------------------------
def _encode_dict(value: dict, arrays: dict[str, np.ndarray], where: str) -> Any:
    plain = type(value) is dict and all(isinstance(k, str) for k in value) and TAG not in value
    if plain:
        return {k: encode(v, arrays, f"{where}[{k!r}]") for k, v in value.items()}
    out: dict[str, Any] = {TAG: "dict"}
    if isinstance(value, defaultdict):
        factory = value.default_factory
        name = None if factory is None else getattr(factory, "__name__", None)
        if factory is not None and _FACTORIES.get(name) is not factory:
            raise TypeError(f"Cannot save {where}: a defaultdict whose default factory is {factory!r}.")
        out = {TAG: "defaultdict", "factory": name}
    elif isinstance(value, OrderedDict):
        out = {TAG: "OrderedDict"}
    out["items"] = [[encode(k, arrays, f"{where} key"), encode(v, arrays, f"{where}[{k!r}]")] for k, v in value.items()]
    return out


# -- arrays ----------------------------------------------------------------------------------------
def _encode_array(value: np.ndarray, arrays: dict[str, np.ndarray], where: str) -> dict[str, Any]:
    kind = value.dtype.kind
    if kind in _BINARY_KINDS:
        key = f"a{len(arrays)}"
        arrays[key] = np.ascontiguousarray(value)
        return {TAG: "ndarray", "key": key}
    if kind == "U":
        return {TAG: "ndarray", "dtype": value.dtype.str, "shape": list(value.shape),
                "values": [str(v) for v in value.ravel()]}
    if kind == "O":
        flat = value.ravel()
        return {TAG: "ndarray", "dtype": "object", "shape": list(value.shape),
                "values": [encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(flat)]}
    raise TypeError(f"Cannot save {where}: numpy array of dtype {value.dtype}.")


def _decode_array(value: dict[str, Any], arrays: dict[str, np.ndarray]) -> np.ndarray:
    if "key" in value:
        key = value["key"]
        if key not in arrays:
            raise ValueError(f"A saved model refers to array {key!r}, which its arrays file does not hold.")
        return arrays[key]
    shape = tuple(int(s) for s in value["shape"])
    if value["dtype"] == "object":
        out = np.empty(len(value["values"]), dtype=object)
        out[:] = [decode(v, arrays) for v in value["values"]]
        return out.reshape(shape)
    return np.asarray(value["values"], dtype=_safe_dtype(value["dtype"])).reshape(shape)


def _safe_dtype(text: str) -> np.dtype:
    dtype = np.dtype(str(text))
    if dtype.kind not in _BINARY_KINDS + "U":
        raise ValueError(f"Unexpected dtype {text!r} in a saved model.")
    return dtype


# -- pandas ----------------------------------------------------------------------------------------
def _encode_column(series: pd.Series, arrays: dict[str, np.ndarray], where: str) -> dict[str, Any]:
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return {TAG: "Categorical", "codes": _encode_array(np.asarray(series.cat.codes), arrays, where),
                "categories": _encode_index(dtype.categories, arrays, f"{where}.categories"),
                "ordered": bool(dtype.ordered)}
    if isinstance(dtype, np.dtype):
        return _encode_array(series.to_numpy(), arrays, where)
    # pandas extension dtypes (string, nullable ints, ...): values as objects, dtype by name
    return {TAG: "extension", "dtype": str(dtype), "values": _encode_array(series.to_numpy(dtype=object), arrays, where)}


def _decode_column(value: dict[str, Any], arrays: dict[str, np.ndarray]):
    kind = value.get(TAG)
    if kind == "Categorical":
        categories = _decode_index(value["categories"], arrays)
        return pd.Categorical.from_codes(_decode_array(value["codes"], arrays), categories=categories,
                                         ordered=bool(value["ordered"]))
    if kind == "extension":
        dtype = pd.api.types.pandas_dtype(str(value["dtype"]))
        return pd.array(_decode_array(value["values"], arrays), dtype=dtype)
    if kind == "ndarray":
        return _decode_array(value, arrays)
    raise ValueError(f"Unknown column type {kind!r} in a saved model.")


def _encode_index(index: pd.Index, arrays: dict[str, np.ndarray], where: str) -> dict[str, Any]:
    name = encode(index.name, arrays, f"{where}.name")
    if isinstance(index, pd.MultiIndex):
        raise TypeError(f"Cannot save {where}: a pandas MultiIndex.")
    if isinstance(index, pd.RangeIndex):
        return {TAG: "RangeIndex", "start": index.start, "stop": index.stop, "step": index.step, "name": name}
    if isinstance(index, pd.CategoricalIndex):
        return {TAG: "CategoricalIndex", "data": _encode_column(pd.Series(index), arrays, where), "name": name}
    return {TAG: "Index", "data": _encode_column(pd.Series(index, copy=False), arrays, where), "name": name}


def _decode_index(value: dict[str, Any], arrays: dict[str, np.ndarray]) -> pd.Index:
    kind = value.get(TAG)
    name = decode(value.get("name"), arrays)
    if kind == "RangeIndex":
        return pd.RangeIndex(int(value["start"]), int(value["stop"]), int(value["step"]), name=name)
    if kind == "CategoricalIndex":
        return pd.CategoricalIndex(_decode_column(value["data"], arrays), name=name)
    if kind == "Index":
        return pd.Index(_decode_column(value["data"], arrays), name=name, tupleize_cols=False)
    raise ValueError(f"Unknown index type {kind!r} in a saved model.")
