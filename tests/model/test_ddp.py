import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from scsynth.model import ScGAN

from ..conftest import DATA


def test_ddp_two_cpu_processes_train_and_the_result_loads(tmp_path):
    script = Path(__file__).with_name("ddp_train_script.py")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, str(script), str(DATA / "immune_small_counts.h5ad"), str(tmp_path / "ddp_model")],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "RANK0 generator steps: 3" in proc.stdout
    assert "RANK0 of 2 backend gloo" in proc.stdout and "RANK1 of 2 backend gloo" in proc.stdout
    model = ScGAN.load(tmp_path / "ddp_model")
    cells = model.generate(40, seed=0)
    assert cells.shape == (40, 300)
    assert np.isfinite(cells.X.toarray()).all() and cells.X.sum() > 0


def test_ddp_trains_both_groundgan_stages(tmp_path, counts):
    import pandas as pd

    from scsynth.model import GRouNdGAN

    genes = list(counts.var_names)
    tfs = ["YBX1", "SON"]  # the two Lambert TFs among these 300 genes
    grn = pd.DataFrame([(tf, g) for g in genes if g not in tfs for tf in tfs], columns=["source", "target"])
    grn.to_csv(tmp_path / "grn.tsv", sep="\t", index=False)
    script = Path(__file__).with_name("ddp_groundgan_script.py")
    proc = subprocess.run(
        [sys.executable, str(script), str(DATA / "immune_small_counts.h5ad"), str(tmp_path / "grn.tsv"),
         str(tmp_path / "gg")],
        capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONUNBUFFERED": "1"}, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "RANK0 steps: 2 + 2" in proc.stdout and "RANK1 of 2" in proc.stdout
    model = GRouNdGAN.load(tmp_path / "gg")
    assert model.generate(20, seed=0).shape == (20, 300)


def test_ddp_genesys_ranks_draw_different_trajectories(tmp_path):
    import re

    from scsynth.model import GeneSys

    from ..conftest import BRANCHING_BLUEPRINT, branching_counts

    branching_counts().write_h5ad(tmp_path / "branching.h5ad")
    BRANCHING_BLUEPRINT.to_csv(tmp_path / "blueprint.tsv", sep="\t")
    script = Path(__file__).with_name("ddp_genesys_script.py")
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "branching.h5ad"), str(tmp_path / "blueprint.tsv"),
         str(tmp_path / "gs")],
        capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONUNBUFFERED": "1"}, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = dict(re.findall(r"RANK(\d) of 2 first batch (\S+) weights", proc.stdout))
    weights = set(re.findall(r"RANK\d of 2 first batch \S+ weights (\S+)", proc.stdout))
    assert set(found) == {"0", "1"} and found["0"] != found["1"]  # per-rank seeding
    assert len(weights) == 1  # DDP kept the ranks' weights identical
    assert "RANK0 epochs: 2" in proc.stdout
    model = GeneSys.load(tmp_path / "gs")
    assert model.generate(3, seed=0).shape == (2 * 3 * 3, 40)
