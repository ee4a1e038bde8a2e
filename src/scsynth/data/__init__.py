"""Reading and preparing inputs: bundled datasets and input checks."""

from ._datasets import pbmc68k_normalized
from ._validate import check_expression, check_label_sizes, check_obs_key, get_matrix

__all__ = ["check_expression", "check_label_sizes", "check_obs_key", "get_matrix", "pbmc68k_normalized"]
