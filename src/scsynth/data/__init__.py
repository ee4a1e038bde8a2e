"""Reading and preparing inputs: bundled datasets, input checks and expression-matrix helpers."""

from ._annotations import read_genesys_annotations
from ._blueprint import Blueprint
from ._blueprint_io import read_blueprint
from ._datasets import geuvadis_lcl, hsmm_myoblast, pbmc68k_normalized
from ._gene_sets import read_gene_sets
from ._grn import control_grns, read_grn, tf_list, top_k_grn
from ._infer_grn import infer_grn
from ._matched_gene_sets import MatchedGeneSets, match_gene_sets
from ._matrix import (
    BackedRows,
    as_anndata,
    check_values,
    get_matrix,
    iter_row_chunks,
    normalize_total,
    read_rows,
    row_sums,
)
from ._prepare_grn import PreparedGRN, prepare_grn
from ._time_steps import as_time_steps
from ._validate import check_expression, check_label_sizes, check_obs_key

__all__ = [
    "BackedRows",
    "Blueprint",
    "MatchedGeneSets",
    "PreparedGRN",
    "as_anndata",
    "as_time_steps",
    "check_expression",
    "check_label_sizes",
    "check_obs_key",
    "check_values",
    "control_grns",
    "get_matrix",
    "geuvadis_lcl",
    "hsmm_myoblast",
    "infer_grn",
    "iter_row_chunks",
    "match_gene_sets",
    "normalize_total",
    "pbmc68k_normalized",
    "prepare_grn",
    "read_blueprint",
    "read_gene_sets",
    "read_rows",
    "read_genesys_annotations",
    "read_grn",
    "row_sums",
    "tf_list",
    "top_k_grn",
]
