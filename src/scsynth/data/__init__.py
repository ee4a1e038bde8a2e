"""Reading and preparing inputs: bundled datasets, input checks and expression-matrix helpers."""

from ._datasets import pbmc68k_normalized
from ._matrix import check_values, get_matrix, normalize_total
from ._validate import check_expression, check_label_sizes, check_obs_key

__all__ = [
    "check_expression",
    "check_label_sizes",
    "check_obs_key",
    "check_values",
    "get_matrix",
    "normalize_total",
    "pbmc68k_normalized",
]
