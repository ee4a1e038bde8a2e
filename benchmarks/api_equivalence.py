"""Same seeds, same cells: each model trained a few steps and sampled, to compare two versions of scsynth.

Prints an md5 prefix of the generated ``.X`` per model (ScGAN, GRouNdGAN, GeneSys, RNAGAN). Run it once on this
checkout and once with an older one first on the path, e.g. ``git worktree add /tmp/old d2d9d74`` then
``SCSYNTH_OFFLINE=1 PYTHONPATH=/tmp/old/src python benchmarks/api_equivalence.py``: equal lines mean the refactor
kept the numbers (it speaks both the 0.2 and the current argument names).
"""
from pathlib import Path
import sys, hashlib, warnings, numpy as np
warnings.simplefilter("ignore")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import (rnagan_samples, GENE_SETS, SMALL_RG, SMALL, SMALL_GG, SMALL_GS, branching_counts,
                      BRANCHING_BLUEPRINT, correlation_grn, DATA)
import anndata, scsynth
from scsynth.model import RNAGAN, ScGAN, GeneSys, GRouNdGAN
h = lambda x: hashlib.md5(np.asarray(x.toarray()).tobytes()).hexdigest()[:10]
scsynth.settings.seed = 0
imm = anndata.read_h5ad(DATA / "immune_small_counts.h5ad")
imm.obs["group"] = np.where(np.asarray(imm[:, "LYZ"].X.todense()).ravel() > 0, "LYZ+", "LYZ-")
imm.obs["group"] = imm.obs["group"].astype("category")
ScGAN.setup_anndata(imm, labels_key="group", is_count_data=True)
m = ScGAN(imm, **SMALL); m.train(max_steps=20, batch_size=32, enable_progress_bar=False)
print("scgan", h(m.generate(30, labels="LYZ+", seed=0).X) if "condition" not in m.generate.__code__.co_varnames else h(m.generate(30, condition="LYZ+", seed=0).X))
pb = scsynth.data.pbmc68k_normalized()
GRouNdGAN.setup_anndata(pb, is_count_data=False)
g = GRouNdGAN(pb, grn=correlation_grn(pb), **SMALL_GG); g.train(controller_steps=5, max_steps=5, batch_size=32, enable_progress_bar=False)
print("groundgan", h(g.generate(30, seed=0).X), len(g.history["generator_step"]))
b = branching_counts(); GeneSys.setup_anndata(b)
s = GeneSys(b, blueprint=BRANCHING_BLUEPRINT, **SMALL_GS); s.train(max_epochs=5, batch_size=16, seed=0, enable_progress_bar=False)
print("genesys", h(s.generate(3, seed=0).X))
a = rnagan_samples()
try:
    RNAGAN.setup_anndata(a, labels_key="group")
except (TypeError, ValueError):
    RNAGAN.setup_anndata(a, groupby="group")
r = RNAGAN(a, gene_sets=GENE_SETS, **SMALL_RG)
import inspect
if "max_steps" in inspect.signature(r.train).parameters:
    r.train(max_steps={"sc": 60}, batch_size=16, n_refs=(3, 6), seed=0, enable_progress_bar=False)
    out = r.generate(20, condition="type 1", seed=0)
else:
    r.train(sc_steps=60, batch_size=16, n_refs=(3, 6), seed=0, enable_progress_bar=False)
    out = r.generate(20, group="type 1", seed=0)
print("rnagan", h(out.X), r.episode_accuracy_)
