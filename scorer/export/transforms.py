"""Op models for scikit-learn transformers: scalers, binarizer, imputer, discretizer, one-hot encoder."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rtscore.errors import InvalidArgument
from scorer.export import values as v
from scorer.export.graph import OpModel

# Bucketizer splits stand in for ±infinity with the largest double: JSON has no infinity and
# MLeap restores only NaN ends to infinity.
_EDGE = float(np.finfo(np.float64).max)


def standard_scaler(est: Any) -> OpModel:
    """StandardScaler on a vector: MLeap's standard_scaler with the optional mean and std."""
    attrs = {}
    if est.with_mean:
        attrs["mean"] = v.vector(est.mean_)
    if est.with_std:
        attrs["std"] = v.vector(est.scale_)
    if not attrs:
        raise InvalidArgument("StandardScaler with neither mean nor std does nothing MLeap can express")
    return OpModel("standard_scaler", attrs)


def min_max_scaler(est: Any) -> OpModel:
    """MinMaxScaler on a vector: MLeap's min_max_scaler (refusing what MLeap computes differently)."""
    if getattr(est, "clip", False):
        raise InvalidArgument("MinMaxScaler with clip=True has no MLeap op")
    constant = np.flatnonzero(np.asarray(est.data_range_) == 0)
    if constant.size:
        # MLeap maps a constant feature to the middle of the range, sklearn to its low end.
        raise InvalidArgument(
            f"MinMaxScaler: feature {int(constant[0])} is constant; MLeap scales it differently"
        )
    low, high = est.feature_range
    attrs = {
        "min": v.vector(est.data_min_),
        "max": v.vector(est.data_max_),
        "minValue": v.double(float(low)),
        "maxValue": v.double(float(high)),
    }
    return OpModel("min_max_scaler", attrs)


def binarizer(est: Any, size: int | None) -> OpModel:
    """Binarizer on a scalar (`size` None) or a vector of `size` elements: 1 where x > threshold."""
    shape = v.scalar_shape() if size is None else v.tensor_shape(size)
    attrs = {"threshold": v.double(float(est.threshold)), "input_shapes": v.data_shape(shape)}
    return OpModel("binarizer", attrs)


def imputers(est: Any) -> list[OpModel]:
    """SimpleImputer as one scalar MLeap imputer per column."""
    if getattr(est, "add_indicator", False):
        raise InvalidArgument("SimpleImputer with add_indicator=True has no MLeap op")
    stats = np.asarray(est.statistics_, dtype=np.float64)
    if np.isnan(stats).any():
        raise InvalidArgument("SimpleImputer saw a column with no values; it drops it, MLeap cannot")
    missing = est.missing_values
    missing_value = (
        math.nan if missing is None or (isinstance(missing, float) and math.isnan(missing)) else missing
    )
    if not isinstance(missing_value, int | float):
        raise InvalidArgument(f"SimpleImputer missing_values={missing!r} is not a number")
    models = []
    for s in stats:
        attrs = {
            "surrogate_value": v.double(float(s)),
            "strategy": v.string(str(est.strategy)),
            "nullable_input": v.boolean(False),
        }
        # MLeap's default missing value is NaN, and JSON cannot spell NaN: leave it out.
        if not math.isnan(float(missing_value)):
            attrs["missing_value"] = v.double(float(missing_value))
        models.append(OpModel("imputer", attrs))
    return models


def bucketizers(est: Any) -> list[OpModel]:
    """KBinsDiscretizer(encode='ordinal') as one MLeap bucketizer per column."""
    if est.encode != "ordinal":
        raise InvalidArgument(f"KBinsDiscretizer encode={est.encode!r} has no MLeap op; use 'ordinal'")
    models = []
    for edges in est.bin_edges_:
        inner = [float(e) for e in np.asarray(edges)[1:-1]]
        # sklearn clips values outside the fitted range into the end bins.
        splits = [-_EDGE, *inner, _EDGE]
        models.append(
            OpModel("bucketizer", {"splits": v.double_list(splits), "handle_invalid": v.string("error")})
        )
    return models


def one_hot_encoders(est: Any) -> list[tuple[OpModel, int]]:
    """OneHotEncoder over integer codes 0..k-1 as one MLeap one_hot_encoder (and its width) per column."""
    if est.drop is not None or est.handle_unknown != "error":
        raise InvalidArgument("OneHotEncoder maps to MLeap only with drop=None and handle_unknown='error'")
    out = []
    for i, cats in enumerate(est.categories_):
        arr = np.asarray(cats)
        if arr.dtype.kind not in "iuf" or not np.array_equal(arr.astype(np.float64), np.arange(arr.size)):
            raise InvalidArgument(
                f"OneHotEncoder column {i}: categories must be the codes 0..k-1 to map to MLeap"
            )
        attrs = {
            "category_sizes": v.int_list([arr.size]),
            "handle_invalid": v.string("error"),
            "drop_last": v.boolean(False),
        }
        out.append((OpModel("one_hot_encoder", attrs), int(arr.size)))
    return out
