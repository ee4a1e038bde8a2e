"""GeneSys inputs in scsynth.data: lineage blueprints, annotations and time steps."""

from __future__ import annotations

import copy
import json
import pickle
import warnings

import anndata
import numpy as np
import pandas as pd
import pytest
from scipy import io, sparse

from scsynth.data import Blueprint, as_time_steps, read_blueprint, read_genesys_annotations

# The toy-data shape: a shared progenitor at time 1, then one fate per trajectory; labels with spaces,
# underscores, a number and a float-looking text.
ROWS = [
    ["Quiescent Center", "CNS_neurons", "CNS_neurons", "CNS_neurons"],
    ["Quiescent Center", "3", "3", "2.0"],
]


def _write_lineage(path, rows=ROWS):
    path.write_text("".join("\t".join(r) + "\n" for r in rows))
    return path


# ---------------------------------------------------------------- read_blueprint


def test_read_lineage_file_round_trip(tmp_path):
    bp = read_blueprint(_write_lineage(tmp_path / "lineage.txt"))
    assert bp.trajectories == ["trajectory_0", "trajectory_1"]
    assert (bp.n_trajectories, bp.n_times) == (2, 4)
    np.testing.assert_array_equal(bp.times, [1, 2, 3, 4])
    assert bp.times.dtype == np.int64
    assert bp.table.to_numpy().tolist() == ROWS
    assert list(bp.table.columns) == [1, 2, 3, 4]
    assert bp.labels == ["Quiescent Center", "CNS_neurons", "3", "2.0"]
    assert bp.label(1, 2) == "3"
    assert bp.label("trajectory_1", 4) == "2.0"
    assert bp.label("trajectory_0", 1) == "Quiescent Center"
    assert repr(bp).startswith("Blueprint: 2 trajectories x 4 time steps (labels: 'Quiescent Center'")


def test_read_lineage_file_strips_whitespace_and_trailing_tabs(tmp_path):
    path = tmp_path / "lineage.txt"
    path.write_text(" A \tB\tB\t\n\nA\tC \tC\t\n")
    bp = read_blueprint(path)
    assert bp.table.to_numpy().tolist() == [["A", "B", "B"], ["A", "C", "C"]]


def test_read_blueprint_names_and_dataframe(tmp_path):
    bp = read_blueprint(_write_lineage(tmp_path / "lineage.txt"), names=["neurons", "three"])
    assert bp.trajectories == ["neurons", "three"]
    assert bp.label("three", 2) == "3"

    # a DataFrame's own index names the trajectories; its columns are renumbered; numbers become text
    frame = pd.DataFrame([["QC", 3, 3], ["QC", "Xylem", "Xylem"]], index=["a", "b"], columns=["x", "y", "z"])
    bp2 = read_blueprint(frame)
    assert bp2.trajectories == ["a", "b"]
    assert list(bp2.table.columns) == [1, 2, 3]
    assert bp2.label("a", 3) == "3"
    # the default RangeIndex is not used as names
    assert read_blueprint(pd.DataFrame(ROWS)).trajectories == ["trajectory_0", "trajectory_1"]
    assert read_blueprint(pd.DataFrame(ROWS)) == read_blueprint(_write_lineage(tmp_path / "l2.txt"))
    # a Blueprint passes through, or is renamed
    assert read_blueprint(bp) is bp
    assert read_blueprint(bp, names=["x", "y"]).trajectories == ["x", "y"]


def test_read_blueprint_row_names(tmp_path):
    # a first column of names, e.g. "neurons<TAB>Quiescent Center<TAB>..."; the time steps follow
    named = [["neurons", *ROWS[0]], [" three ", *ROWS[1]]]
    bp = read_blueprint(_write_lineage(tmp_path / "named.txt", named), row_names=True)
    assert bp.trajectories == ["neurons", "three"]
    assert bp.n_times == 4 and bp.table.to_numpy().tolist() == ROWS
    assert bp == read_blueprint(_write_lineage(tmp_path / "plain.txt"), names=["neurons", "three"])
    # the same for a DataFrame, whose own index is then ignored
    frame = pd.DataFrame(named, index=["x", "y"])
    assert read_blueprint(frame, row_names=True) == bp
    # a named row missing its name, or names asked for twice
    _write_lineage(tmp_path / "gap.txt", [named[0], ["", *ROWS[1]]])
    with pytest.raises(ValueError, match=r"row 2 \(line 2\) has no name"):
        read_blueprint(tmp_path / "gap.txt", row_names=True)
    with pytest.raises(ValueError, match="either names= or row_names=True"):
        read_blueprint(tmp_path / "named.txt", names=["a", "b"], row_names=True)
    with pytest.raises(ValueError, match="already named"):
        read_blueprint(bp, row_names=True)
    with pytest.raises(ValueError, match="Duplicated trajectory names.*'a'"):
        read_blueprint(pd.DataFrame([["a", "QC", "X"], ["a", "QC", "Y"]]), row_names=True)
    # read without row_names, the names are labels at time 1: the error says how to read them as names
    plain = read_blueprint(tmp_path / "named.txt")
    with pytest.raises(ValueError, match=r"'neurons'.*row_names=True.*--blueprint-row-names"):
        plain.check_against(["Quiescent Center", "CNS_neurons", "3", "2.0"], [1, 2, 2, 4])
    # a plain typo gets no such hint
    with pytest.raises(ValueError, match="not in") as err:
        read_blueprint(pd.DataFrame(ROWS)).check_against(["Quiescent Center", "3", "2.0"], [1, 2, 4])
    assert "row_names" not in str(err.value)


def test_blueprint_is_immutable(tmp_path):
    bp = read_blueprint(pd.DataFrame(ROWS))
    with pytest.raises(AttributeError, match="immutable"):
        bp.table = pd.DataFrame()
    table = bp.table
    table.iloc[0, 0] = "changed"
    assert bp.label(0, 1) == "Quiescent Center"


def test_to_dict_from_dict_and_pickle():
    bp = read_blueprint(pd.DataFrame(ROWS), names=["n", "t"])
    d = bp.to_dict()
    assert d["trajectories"] == ["n", "t"]
    assert d["times"] == [1, 2, 3, 4]
    assert d["table"] == ROWS
    assert all(type(t) is int for t in d["times"])
    back = Blueprint.from_dict(json.loads(json.dumps(d)))
    assert back == bp
    assert hash(back) == hash(bp)
    assert back != read_blueprint(pd.DataFrame(ROWS))  # other names
    assert pickle.loads(pickle.dumps(bp)) == bp
    assert copy.deepcopy(bp) == bp
    with pytest.raises(ValueError, match="Not a saved Blueprint"):
        Blueprint.from_dict({"table": ROWS})


def test_read_blueprint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        read_blueprint(tmp_path / "nope.txt")
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(ValueError, match="is empty"):
        read_blueprint(tmp_path / "empty.txt")
    ragged = _write_lineage(tmp_path / "ragged.txt", [["A", "B", "B", "B"], ["A", "C"], ["A", "D", "", "D"]])
    with pytest.raises(ValueError, match="empty entries") as err:
        read_blueprint(ragged)
    msg = str(err.value)
    assert "row 2 (line 2), trajectory 'trajectory_1': time steps 3, 4" in msg
    assert "row 3 (line 3), trajectory 'trajectory_2': time step 3" in msg
    assert "repeat its last label" in msg
    with pytest.raises(ValueError, match="row 1, trajectory 'a': time step 2"):
        read_blueprint(pd.DataFrame([["A", None, "B"]], index=["a"]))
    with pytest.raises(ValueError, match="Duplicated trajectory names.*'x'"):
        read_blueprint(pd.DataFrame(ROWS), names=["x", "x"])
    with pytest.raises(ValueError, match="names has 3 entries"):
        read_blueprint(pd.DataFrame(ROWS), names=["x", "y", "z"])
    single = _write_lineage(tmp_path / "single.txt", [["A"], ["B"]])
    with pytest.raises(ValueError, match="single time step.*at least 2"):
        read_blueprint(single)
    with pytest.raises(ValueError, match="columns must be the time steps"):
        Blueprint(pd.DataFrame(ROWS, index=["a", "b"]))


# ---------------------------------------------------------------- check_against


@pytest.fixture
def bp() -> Blueprint:
    rows = [["QC", "Cortex", "Cortex", "Cortex"], ["QC", "Xylem", "Xylem", "Xylem"]]
    return read_blueprint(pd.DataFrame(rows, index=["cortex", "xylem"]))


def test_check_against_all_present(bp):
    labels = ["QC", "Cortex", "Cortex", "Cortex", "Xylem", "Xylem", "Xylem", "Xylem"]
    times = [1, 2, 3, 4, 2, 3, 4, 4]
    out = bp.check_against(labels, pd.Series(times, dtype=float))
    assert len(out) == 8
    assert out[(0, 1)] == ("QC", [1])
    assert out[(1, 1)] == ("QC", [1])
    assert out[(0, 3)] == ("Cortex", [3])
    assert out[(1, 4)] == ("Xylem", [4])


def test_check_against_missing_raises(bp):
    labels = ["QC", "Cortex", "Cortex", "Xylem", "Xylem", "Xylem"]
    times = [1, 2, 4, 2, 3, 4]  # no Cortex at time 3
    with pytest.raises(ValueError, match="trajectory 'cortex' at time 3 \\(label 'Cortex'\\)") as err:
        bp.check_against(labels, times, where="obs['label']")
    assert 'fallback="neighbors"' in str(err.value)
    assert "1 blueprint entry has no cells in obs['label']" in str(err.value)


def test_check_against_neighbors_pools_previous_and_next(bp):
    labels = ["QC", "Cortex", "Cortex", "Xylem", "Xylem"]
    times = [1, 2, 4, 2, 3]  # Cortex missing at 3 (neighbours 2 and 4); Xylem missing at T = 4
    out = bp.check_against(labels, times, fallback="neighbors")
    assert out[(0, 3)] == ("Cortex", [2, 4])
    assert out[(1, 4)] == ("Xylem", [3])
    assert out[(0, 2)] == ("Cortex", [2])
    # at time 1 only the next step is a neighbour
    only_later = read_blueprint(pd.DataFrame([["Cortex", "Cortex"]]))
    assert only_later.check_against(["Cortex"], [2], fallback="neighbors")[(0, 1)] == ("Cortex", [2])


def test_check_against_neighbors_still_missing(bp):
    labels = ["QC", "Cortex", "Xylem", "Xylem", "Xylem"]
    times = [1, 2, 2, 3, 4]  # Cortex only at 2: time 4 has no neighbour with cells
    with pytest.raises(ValueError, match="nor at the previous or next.*'cortex' at time 4"):
        bp.check_against(labels, times, fallback="neighbors")


def test_check_against_label_absent_everywhere(bp):
    labels = ["QC", "Cortex", "Cortex", "Cortex", "xylem"]
    times = [1, 2, 3, 4, 2]
    with pytest.raises(
        ValueError, match="label 'Xylem' of trajectory 'xylem' is not in obs\\['label'\\]"
    ) as err:
        bp.check_against(labels, times, where="obs['label']")
    assert "'xylem'" in str(err.value).split("Labels there:")[1]
    with pytest.raises(ValueError, match="fallback must be"):
        bp.check_against(labels, times, fallback="zeros")


def test_check_against_numeric_labels_match_text():
    bp = read_blueprint(pd.DataFrame([["0", "3"]]))
    assert bp.check_against(np.array([0, 3]), [1, 2]) == {(0, 1): ("0", [1]), (0, 2): ("3", [2])}


# ---------------------------------------------------------------- as_time_steps


def test_as_time_steps():
    out = as_time_steps(["6.0", " 2 ", 1.0, 3])
    np.testing.assert_array_equal(out, [6, 2, 1, 3])
    assert out.dtype == np.int64
    with pytest.raises(ValueError, match="obs\\['stage'\\] holds non-numeric values.*'early'"):
        as_time_steps(["1", "early"], key="stage")
    with pytest.raises(ValueError, match="non-integer.*2.5"):
        as_time_steps([1, 2.5])
    with pytest.raises(ValueError, match="below 1.*numbers time steps from 1"):
        as_time_steps([0, 1, 2])
    with pytest.raises(ValueError, match="missing values"):
        as_time_steps([1.0, np.nan])


# ---------------------------------------------------------------- read_genesys_annotations

BARCODES = ["AAAC-1", "AAAG-1", "AACT-1", "ACGT-1", "AGGT-1"]
GENES = [("AT1G01010", "NAC001"), ("AT1G01020", "ARV1"), ("AT1G01030", "NAC001")]
# annotation rows in a different order than barcodes.tsv: alignment must be by barcode
ANNOTATIONS = [
    ("AGGT-1", "Cortex", "3.0"),
    ("AAAC-1", "Quiescent Center", "1.0"),
    ("ACGT-1", "Cortex", "3.0"),
    ("AAAG-1", "CNS_neurons", "2.0"),
    ("AACT-1", "3", "2.0"),
]


def _counts() -> np.ndarray:
    # cell i has total counts 10 * (i + 1): identifies the cell after reading
    return np.array([[i + 1, 2 * (i + 1), 7 * (i + 1)] for i in range(len(BARCODES))], dtype=np.float32)


def _write_annotations(path, rows=ANNOTATIONS, header="barcode\tlabel\ttime", extra=None):
    lines = [header + ("\tbatch" if extra else "")]
    for i, r in enumerate(rows):
        lines.append("\t".join(r) + (f"\tb{i}" if extra else ""))
    path.write_text("\n".join(lines) + "\n")
    return path


def _write_10x(folder):
    folder.mkdir(exist_ok=True)
    io.mmwrite(str(folder / "matrix.mtx"), sparse.coo_matrix(_counts().T))  # 10x: genes x cells
    (folder / "genes.tsv").write_text("".join(f"{i}\t{s}\n" for i, s in GENES))
    (folder / "barcodes.tsv").write_text("".join(f"{b}\n" for b in BARCODES))
    return folder


def _check_aligned(adata):
    assert list(adata.obs_names) == BARCODES
    expected = {b: (lab, int(float(t))) for b, lab, t in ANNOTATIONS}
    assert adata.obs["label"].tolist() == [expected[b][0] for b in BARCODES]
    assert adata.obs["time"].tolist() == [expected[b][1] for b in BARCODES]
    assert adata.obs["time"].dtype == np.int64
    assert isinstance(adata.obs["label"].dtype, pd.CategoricalDtype)
    totals = np.asarray(adata.X.sum(axis=1)).ravel()
    np.testing.assert_allclose(totals, 10 * np.arange(1, len(BARCODES) + 1))


def test_annotations_with_10x_directory(tmp_path):
    folder = _write_10x(tmp_path / "toy")
    anno = _write_annotations(folder / "annotations.txt", extra=True)
    adata = read_genesys_annotations(anno)  # matrix found next to the annotations
    _check_aligned(adata)
    assert list(adata.var_names) == ["NAC001", "ARV1", "NAC001-1"]
    assert adata.obs.loc["AGGT-1", "batch"] == "b0"
    _check_aligned(read_genesys_annotations(anno, folder))


def test_annotations_with_one_column_genes(tmp_path):
    folder = _write_10x(tmp_path / "toy")
    (folder / "genes.tsv").write_text("".join(f"{i}\n" for i, _ in GENES))
    adata = read_genesys_annotations(_write_annotations(tmp_path / "annotations.txt"), folder)
    assert list(adata.var_names) == [i for i, _ in GENES]
    _check_aligned(adata)


def test_annotations_with_h5ad_and_anndata(tmp_path):
    source = anndata.AnnData(sparse.csr_matrix(_counts()), obs=pd.DataFrame(index=BARCODES))
    source.write_h5ad(tmp_path / "data.h5ad")
    anno = _write_annotations(tmp_path / "annotations.txt")
    _check_aligned(read_genesys_annotations(anno, tmp_path / "data.h5ad"))

    out = read_genesys_annotations(anno, source, label_key="cell_type", time_key="stage")
    assert out is not source
    assert list(source.obs.columns) == []  # the input is not modified
    assert out.obs["cell_type"].tolist()[:2] == ["Quiescent Center", "CNS_neurons"]
    assert out.obs["stage"].tolist() == [1, 2, 2, 3, 3]


def test_annotations_time_errors(tmp_path):
    source = anndata.AnnData(_counts(), obs=pd.DataFrame(index=BARCODES))
    bad = [(b, lab, "late" if i == 1 else t) for i, (b, lab, t) in enumerate(ANNOTATIONS)]
    with pytest.raises(ValueError, match="'time' column of .*annotations.txt.* non-numeric values.*'late'"):
        read_genesys_annotations(_write_annotations(tmp_path / "annotations.txt", bad), source)
    zero = [(b, lab, str(float(t) - 1)) for b, lab, t in ANNOTATIONS]
    with pytest.raises(ValueError, match="below 1 .*numbers time steps from 1"):
        read_genesys_annotations(_write_annotations(tmp_path / "annotations.txt", zero), source)
    later = [(b, lab, str(float(t) + 1)) for b, lab, t in ANNOTATIONS]
    with pytest.raises(ValueError, match="starts at 2, not 1"):
        read_genesys_annotations(_write_annotations(tmp_path / "annotations.txt", later), source)
    gap = [(b, lab, "4" if t == "3.0" else t) for b, lab, t in ANNOTATIONS]
    with pytest.warns(UserWarning, match="no cells at time step 3"):
        read_genesys_annotations(_write_annotations(tmp_path / "annotations.txt", gap), source)


def test_annotations_barcode_errors(tmp_path):
    source = anndata.AnnData(_counts(), obs=pd.DataFrame(index=BARCODES))
    partial = _write_annotations(tmp_path / "annotations.txt", [ANNOTATIONS[i] for i in (0, 1, 3)])
    with pytest.raises(
        ValueError, match="2 of 5 cells .* have no row in .*'AACT-1', 'ACGT-1'.*subset the matrix"
    ):
        read_genesys_annotations(partial, source)
    stripped = [(b[:-2], lab, t) for b, lab, t in ANNOTATIONS]
    with pytest.raises(ValueError, match="No barcode matches at all"):
        read_genesys_annotations(_write_annotations(tmp_path / "annotations.txt", stripped), source)
    more = [*ANNOTATIONS, ("TTTT-1", "Cortex", "3")]
    with pytest.warns(UserWarning, match="1 barcodes .* are not cells .*'TTTT-1'"):
        out = read_genesys_annotations(_write_annotations(tmp_path / "annotations.txt", more), source)
    assert out.n_obs == 5
    no_time = _write_annotations(tmp_path / "annotations.txt", header="barcode\tlabel\tday")
    with pytest.raises(ValueError, match="lacks the column.*'time'"):
        read_genesys_annotations(no_time, source)
    with pytest.raises(FileNotFoundError, match="not found"):
        read_genesys_annotations(tmp_path / "missing.txt", source)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_genesys_annotations(_write_annotations(tmp_path / "annotations.txt"), source)
