"""Validation and exact conversion of class-index targets, class weights and label smoothing."""
import numpy as np

from ._exact import exact_array, is_zero
from ._mp import as_numpy, is_integer_array
from .errors import (ArgumentTypeError, LabelSmoothingRangeError, ShapeMismatchError, TargetDtypeError,
                     TargetOutOfRangeError, WeightSizeError)


def is_probability_target(target_array, input_shape):
    """torch's dispatch rule: a target of exactly the input's shape holds class probabilities."""
    return target_array.shape == tuple(input_shape)


def check_index_dtype(target_array):
    """Class indices must be int64 ("the data type must be long"); lists of Python ints count as int64."""
    if target_array.dtype == object:
        if not is_integer_array(target_array):
            raise TargetDtypeError("class-index target must hold integers (dtype int64)")
    elif target_array.dtype != np.int64:
        raise TargetDtypeError(f"class-index target has dtype {target_array.dtype}; it must be int64")


def check_ignore_index(ignore_index):
    """The docs type ignore_index int; anything else (a bool, a float, None, a string) is ArgumentTypeError."""
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
        raise ArgumentTypeError(f"ignore_index must be an int, got {ignore_index!r}")


def index_targets(target, out_shape, n_classes, ignore_index):
    """Class indices as a flat list (C order) with None for ignored entries, after every documented check."""
    target_array = as_numpy(target)
    check_index_dtype(target_array)
    if target_array.shape != tuple(out_shape):
        raise ShapeMismatchError(f"target has shape {target_array.shape}, but the input needs {tuple(out_shape)}")
    check_ignore_index(ignore_index)
    indices = []
    for position, value in enumerate(target_array.flat):
        value = int(value)
        if value == ignore_index:
            indices.append(None)
        elif 0 <= value < n_classes:
            indices.append(value)
        else:
            raise TargetOutOfRangeError(f"target {value} at flat position {position} is outside [0, {n_classes}) "
                                        f"and is not ignore_index={ignore_index}")
    return indices


def class_weights(engine, weight, n_classes):
    """(weights as numbers, which weights are exactly 0) for the C classes (all ones when weight is None)."""
    if weight is None:
        return [engine.one] * n_classes, np.zeros(n_classes, dtype=bool)
    weights = exact_array(weight, "weight")
    if weights.shape != (n_classes,):
        raise WeightSizeError(f"weight must have shape ({n_classes},) for C = {n_classes} classes, got {weights.shape}")
    return engine.numbers(weights), is_zero(weights)


def smoothing_factor(label_smoothing):
    """label_smoothing as an exact float, after checking the documented range [0.0, 1.0]."""
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float, np.integer, np.floating)):
        raise LabelSmoothingRangeError(f"label_smoothing must be a float in [0.0, 1.0], got {label_smoothing!r}")
    if not 0.0 <= float(label_smoothing) <= 1.0:
        raise LabelSmoothingRangeError(f"label_smoothing must be in [0.0, 1.0], got {label_smoothing!r}")
    return float(label_smoothing)
