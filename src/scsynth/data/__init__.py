"""Reading and preparing inputs: bundled datasets, input checks and expression-matrix helpers."""

from ._datasets import pbmc68k_normalized
from ._grn import control_grns, read_grn, tf_list, top_k_grn
from ._infer_grn import infer_grn
from ._matrix import check_values, get_matrix, normalize_total
from ._prepare_grn import PreparedGRN, prepare_grn
from ._validate import check_expression, check_label_sizes, check_obs_key

__all__ = [
    "PreparedGRN",
    "check_expression",
    "check_label_sizes",
    "check_obs_key",
    "check_values",
    "control_grns",
    "get_matrix",
    "infer_grn",
    "normalize_total",
    "pbmc68k_normalized",
    "prepare_grn",
    "read_grn",
    "tf_list",
    "top_k_grn",
]
