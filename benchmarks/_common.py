"""Helpers shared by the benchmark scripts (not part of the package)."""

from __future__ import annotations

import json
import os
import platform
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import anndata
import numpy as np
import torch
from scipy import sparse

try:
    import fcntl
except ImportError:  # Windows: results written side by side may then overwrite each other's rows
    fcntl = None

HERE = Path(__file__).parent
RESULTS = HERE / "results"


def machine() -> dict:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def immune_counts(n_genes: int | None = 1000) -> anndata.AnnData:
    """Real immune cells (raw UMI counts), restricted to the ``n_genes`` most often detected genes."""
    adata = anndata.read_h5ad(HERE / "data" / "immune_559_counts.h5ad")
    if n_genes is not None:
        detected = np.asarray((adata.X > 0).sum(0)).ravel()
        adata = adata[:, np.sort(np.argsort(-detected)[:n_genes])].copy()
    adata = adata[np.asarray(adata.X.sum(1)).ravel() > 0].copy()
    adata.X = sparse.csr_matrix(adata.X, dtype=np.float32)
    return adata


def resample(adata: anndata.AnnData, n_obs: int, *, dense: bool, seed: int = 0) -> anndata.AnnData:
    """``n_obs`` cells drawn with replacement from real cells (dense or CSR float32)."""
    idx = np.random.default_rng(seed).integers(0, adata.n_obs, size=n_obs)
    x = adata.X[idx]
    out = anndata.AnnData(x.toarray() if dense else sparse.csr_matrix(x))
    out.var_names = adata.var_names
    return out


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Sample the resident set size every few ms while a block runs; ``.peak`` is the maximum."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval, self.peak, self._stop = interval, 0, threading.Event()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.interval)

    def __enter__(self) -> PeakRSS:
        self.peak = rss_bytes()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def matrix_bytes(x) -> int:
    if sparse.issparse(x):
        return int(x.data.nbytes + x.indices.nbytes + x.indptr.nbytes)
    return int(np.asarray(x).nbytes)


def write_json(name: str, payload: dict) -> Path:
    """``results/<name>.json``, replaced atomically: an interrupted write leaves the previous file whole."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=float))
    os.replace(tmp, path)
    return path


@contextmanager
def results_lock() -> Iterator[None]:
    """Hold an exclusive lock on the results folder (on the folder itself: no lock file to clean up)."""
    RESULTS.mkdir(exist_ok=True)
    if fcntl is None:
        yield
        return
    fd = os.open(RESULTS, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def update_runs(name: str, rows: list[dict], key: Sequence[str], **payload) -> list[dict]:
    """Merge ``rows`` into ``results/<name>.json`` and return every run stored there.

    The file is read again under :func:`results_lock` and replaced atomically, so processes that write the
    same results side by side (one seed each, say) keep each other's rows. A row replaces a stored one whose
    ``key`` fields are equal; ``payload`` (``machine=...``, ``args=...``) replaces those entries of the file.
    """
    def ident(row: dict) -> tuple:
        return tuple(row.get(k) for k in key)

    with results_lock():
        path = RESULTS / f"{name}.json"
        stored = json.loads(path.read_text()) if path.is_file() else {}
        new = {ident(r) for r in rows}
        runs = [r for r in stored.get("runs", []) if ident(r) not in new] + list(rows)
        write_json(name, {**stored, **payload, "runs": runs})
    return runs


def write_markdown(name: str, text: str) -> Path:
    """``results/<name>.md``: the printed tables, included by the documentation."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.md"
    path.write_text(text.rstrip() + "\n")
    return path


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    def fmt(v):
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)
