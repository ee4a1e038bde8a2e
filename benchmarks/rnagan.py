"""RNAGAN: bulk sex, PBMC cell types, cross-modality small data, and speed, each next to its peer.

Usage::

    python benchmarks/rnagan.py                         # all parts (about 50 min on 2 CPU cores)
    python benchmarks/rnagan.py --part bulk pbmc          # other parts keep their earlier results
    python benchmarks/rnagan.py --quick                 # a few steps of everything, to check the script

**bulk** — GEUVADIS lymphoblastoid lines (:func:`scsynth.data.geuvadis_lcl`, 85 samples, sex), the 2000 most variable
genes (Seurat v3 on counts, no labels used). Stratified 5-fold cross-validation: RNAGAN trains on four
folds (bulk stage, defaults, batch 32) and stratifies the fifth against the training samples
(calibrated); the peer is logistic regression on standardised log-CPM of the same genes, same folds.
Per fold, pseudo-samples of each held-out sample's sex are generated; all folds pooled are scored with
:func:`scsynth.metrics.realism` against the held-out samples. On the first fold's model, markers of
Female vs Male and Male vs Female (training samples): how many of the top 10 genes lie on X or Y
(``data/sex_chromosome_genes.tsv``, a hand-curated list: the count is a lower bound), and the top pathways.
The first fold's pathway activities of its held-out samples are set against decoupler's ULM scores of the
same gene sets (``rnagan_decoupler.py``: median per-set Spearman correlation across samples).

**pbmc** — ``pbmc68k_reduced`` (700 cells, 765 genes, 10 cell types), 30% of each type held out.
RNAGAN (single-cell stage) stratifies held-out cells against the training cells; peers: logistic
regression on log1p values, and a nearest-centroid classifier on scVI latents (scVI on the same
training cells, rounded normalised values, as the package ships no counts for it). Embedding quality
of held-out cells: silhouette of cell types and ARI of k-means (k = number of types), for RNAGAN's
vector, its pathway activities, scVI's latent and 20 PCs of log1p values. Markers of each type vs the
rest on the training cells: overlap of RNAGAN's top 20 genes with ``scanpy.tl.rank_genes_groups``'
(Wilcoxon) top 20. Pathway activities of the held-out cells against decoupler's ULM scores of the same
gene sets on the same cells (``rnagan_decoupler.py``), per set Spearman across cells, the median reported.

**crossmodal** — pretraining on single cells, then bulk sex from k = 5, 10, 20 samples per sex
(``--repeats`` random draws each; the other samples are the test set). Two settings: "immune + pbmc"
pretrains on ``immune_559`` (counts, no labels: 8 k-means clusters of its PCA are its groups) and
``pbmc68k_reduced`` (cell types), over the genes all three share (548, none on chromosome Y);
"immune only" pretrains on ``immune_559`` over the bulk's 2000 most variable genes among those it shares
with immune_559 (pbmc68k_reduced's 765 genes would leave too few). Compared: RNAGAN trained on the k
bulk samples only; RNAGAN pretrained on the single cells, then fine-tuned on them (same bulk budget);
the pretrained model with no bulk training, the k samples used only as references (groups never seen
in training); and logistic regression on log-CPM. Reported: held-out accuracy and AUROC.

**speed** — ``immune_559`` resampled to 20k cells x its 5000 most detected genes (sparse counts),
50 Hallmark sets + 8 learned pathways. Median seconds per training step (64 episodes, 5-20
references each) for the discriminator-only warm-up and the adversarial phase, peak resident memory,
and stratify / embed throughput; scVI's step (batch 128) on the same data for scale.

Writes ``benchmarks/results/rnagan.json`` and ``rnagan.md``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import anndata
import numpy as np
import pandas as pd
import scanpy as sc
from _common import HERE, RESULTS, PeakRSS, machine, markdown_table, resample, write_json, write_markdown
from rnagan_decoupler import pathway_agreement, render_agreement
from lightning.pytorch.callbacks import Callback
from scipy import sparse
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import adjusted_rand_score, roc_auc_score, silhouette_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import scsynth
from scsynth.model import RNAGAN

IMMUNE = HERE / "data" / "immune_559_counts.h5ad"
REALISM_METRICS = ["rf_auroc", "mmd", "gene_mean_corr"]


def log_cpm(x) -> np.ndarray:
    x = x.toarray() if sparse.issparse(x) else np.asarray(x)
    return np.log1p(x / np.maximum(x.sum(1, keepdims=True), 1) * 1e6)


def lr_peer(train_x, train_y, test_x):
    """Logistic regression on standardised log-CPM: (predicted labels, class order, probabilities)."""
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    clf.fit(log_cpm(train_x), train_y)
    return clf.predict(log_cpm(test_x)), list(clf.classes_), clf.predict_proba(log_cpm(test_x))


def bulk_data(n_hvg: int = 2000) -> anndata.AnnData:
    adata = scsynth.data.geuvadis_lcl()
    adata = adata[:, np.asarray(adata.X.sum(0)).ravel() > 0].copy()
    hvg = sc.pp.highly_variable_genes(adata, n_top_genes=n_hvg, flavor="seurat_v3", inplace=False)
    return adata[:, hvg["highly_variable"].to_numpy()].copy()


def sex_genes() -> dict[str, str]:
    table = pd.read_csv(HERE / "data" / "sex_chromosome_genes.tsv", sep="\t", comment="#")
    return dict(zip(table["gene"], table["chromosome"], strict=True))


def train_bulk_rnagan(train: anndata.AnnData, steps: int, seed: int, init=None) -> RNAGAN:
    train = train.copy()
    RNAGAN.setup_anndata(train, labels_key="sex", modality="bulk")
    model = RNAGAN(train, gene_sets="hallmark")
    if init is not None:  # weights of a model pretrained on single cells (same genes and gene sets)
        model.module.load_state_dict(init.module.state_dict())
    model.train(max_steps={"sc": 0, "bulk": steps}, batch_size=32, seed=seed, enable_progress_bar=False)
    return model


#: Compare the pathway activities with decoupler's ULM scores (``--no-decoupler`` turns it off).
DECOUPLER_CHECK = True


def bulk(steps: int, seed: int, repeats: int) -> dict:
    adata = bulk_data()
    y = adata.obs["sex"].astype(str).to_numpy()
    folds = StratifiedKFold(5, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
    rows, generated, held, marker_rows, seconds = [], [], [], {}, []
    for k, (tr, te) in enumerate(folds):
        train, test = adata[tr].copy(), adata[te].copy()
        start = time.perf_counter()
        model = train_bulk_rnagan(train, steps, seed)
        seconds.append(time.perf_counter() - start)
        probs = model.stratify(test, n_draws=20, n_refs=5, seed=seed)
        lr_pred, classes, lr_probs = lr_peer(train.X, y[tr], test.X)
        female = (y[te] == "Female").astype(int)
        rows.append({"fold": k, "n_test": len(te),
                     "RNAGAN_acc": float((test.obs["rnagan"].astype(str) == y[te]).mean()),
                     "RNAGAN_auroc": float(roc_auc_score(female, probs["Female"])),
                     "LR_acc": float((lr_pred == y[te]).mean()),
                     "LR_auroc": float(roc_auc_score(female, lr_probs[:, classes.index("Female")])),
                     "temperature": test.uns["rnagan"]["params"]["temperature"], "train_s": seconds[-1]})
        print(rows[-1], flush=True)
        for sex in ("Female", "Male"):
            n = int((y[te] == sex).sum())
            generated.append(model.generate(n, condition=sex, modality="bulk", seed=seed + k))
        held.append(test)
        if k == 0 and DECOUPLER_CHECK:
            agreement = pathway_agreement(model, test)
            print({k: v for k, v in agreement.items() if k != "per_set"}, flush=True)
        if k == 0:
            chrom = sex_genes()
            for group, other in (("Female", "Male"), ("Male", "Female")):
                table = model.markers(train, groupby="sex", group=group, reference=other, n_draws=10, n_refs=10,
                                      seed=seed)
                genes = table[table["kind"] == "gene"].head(10)
                pathways = table[table["kind"] == "pathway"].head(5)
                marker_rows[f"{group} vs {other}"] = {
                    "top10_genes": [f"{g} ({chrom.get(g, 'auto')})" for g in genes["feature"]],
                    "top10_on_X_or_Y": int(genes["feature"].isin(list(chrom)).sum()),
                    "top5_pathways": [f"{p} (FDR {f:.2g})" for p, f in zip(pathways["feature"], pathways["fdr"],
                                                                          strict=True)],
                }
                print(group, marker_rows[f"{group} vs {other}"], flush=True)
    real = anndata.concat(held)
    gen = anndata.concat(generated)
    gen.obs_names_make_unique()
    table = scsynth.metrics.realism(real, gen, n_repeats=repeats, seed=seed, rf_trees=300).set_index("metric")
    realism = {m: {"value": float(table.loc[m, "value"]), "ratio": float(table.loc[m, "ratio"])}
               for m in REALISM_METRICS}
    realism["n_per_side"] = int(table["n_cells"].iloc[0])
    frame = pd.DataFrame(rows)
    summary = {c: float(frame[c].mean()) for c in ["RNAGAN_acc", "RNAGAN_auroc", "LR_acc", "LR_auroc"]}
    out = {"folds": rows, "mean": summary, "markers": marker_rows, "realism": realism, "n_genes": adata.n_vars,
           "steps": steps, "median_train_s": float(np.median(seconds))}
    if DECOUPLER_CHECK:
        out["decoupler"] = agreement
    return out


def split_by_group(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    test = np.zeros(len(labels), dtype=bool)
    for g in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == g))
        test[idx[: max(1, round(fraction * len(idx)))]] = True
    return np.flatnonzero(~test), np.flatnonzero(test)


def train_scvi(adata: anndata.AnnData, epochs: int, seed: int):
    import scvi

    counts = adata.copy()
    counts.X = sparse.csr_matrix(np.round(counts.X.toarray()))
    scvi.settings.seed = seed
    scvi.model.SCVI.setup_anndata(counts)
    model = scvi.model.SCVI(counts)
    model.train(max_epochs=epochs, enable_progress_bar=False)
    return model


def scvi_latent(model, adata: anndata.AnnData) -> np.ndarray:
    counts = adata.copy()
    counts.X = sparse.csr_matrix(np.round(counts.X.toarray()))
    return model.get_latent_representation(counts)


def embedding_scores(x: np.ndarray, labels: np.ndarray, seed: int) -> dict:
    k = len(np.unique(labels))
    clusters = KMeans(k, n_init=10, random_state=seed).fit_predict(StandardScaler().fit_transform(x))
    return {"silhouette": float(silhouette_score(x, labels)), "kmeans_ari": float(adjusted_rand_score(labels,
                                                                                                       clusters))}


def pbmc(steps: int, scvi_epochs: int, seed: int) -> dict:
    from sklearn.decomposition import PCA
    from sklearn.neighbors import NearestCentroid

    adata = scsynth.data.pbmc68k_normalized()
    labels = adata.obs["bulk_labels"].astype(str).to_numpy()
    tr, te = split_by_group(labels, 0.3, seed)
    train, test = adata[tr].copy(), adata[te].copy()
    RNAGAN.setup_anndata(train, labels_key="bulk_labels", is_count_data=False)
    model = RNAGAN(train, gene_sets="hallmark")
    start = time.perf_counter()
    model.train(max_steps={"sc": steps}, batch_size=64, seed=seed, enable_progress_bar=False)
    rnagan_s = time.perf_counter() - start
    model.stratify(test, n_draws=20, n_refs=5, seed=seed)
    rnagan_acc = float((test.obs["rnagan"].astype(str) == labels[te]).mean())
    log_tr, log_te = np.log1p(train.X.toarray()), np.log1p(test.X.toarray())
    lr = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(log_tr, labels[tr])
    lr_acc = float((lr.predict(log_te) == labels[te]).mean())
    start = time.perf_counter()
    vae = train_scvi(train, scvi_epochs, seed)
    scvi_s = time.perf_counter() - start
    z_tr, z_te = scvi_latent(vae, train), scvi_latent(vae, test)
    centroid_acc = float((NearestCentroid().fit(z_tr, labels[tr]).predict(z_te) == labels[te]).mean())
    print({"RNAGAN": rnagan_acc, "LR": lr_acc, "scVI centroid": centroid_acc}, flush=True)
    scsynth.tl.embed(test, model)
    pcs = PCA(20, random_state=seed).fit(log_tr).transform(log_te)
    embeddings = {"RNAGAN vector (X_rnagan)": test.obsm["X_rnagan"],
                  "RNAGAN pathways (X_rnagan_pathways)": test.obsm["X_rnagan_pathways"].to_numpy(),
                  "scVI latent": z_te, "PCA of log1p (20)": pcs}
    embed_rows = [{"embedding": k, "dims": v.shape[1], **embedding_scores(v, labels[te], seed)}
                  for k, v in embeddings.items()]
    print(embed_rows, flush=True)
    # markers of each type vs the rest, on the training cells, against scanpy's Wilcoxon ranking
    ref = train.copy()
    ref.X = sparse.csr_matrix(np.log1p(ref.X.toarray()))
    sc.tl.rank_genes_groups(ref, "bulk_labels", method="wilcoxon")
    overlap_rows = []
    for group in sorted(set(labels[tr])):
        table = model.markers(train, groupby="bulk_labels", group=group, n_draws=5, n_refs=10, seed=seed)
        ours = table[table["kind"] == "gene"]["feature"].head(20)
        theirs = sc.get.rank_genes_groups_df(ref, group)["names"].head(20)
        overlap_rows.append({"cell type": group, "n_train": int((labels[tr] == group).sum()),
                             "top20_overlap": int(len(set(ours) & set(theirs))),
                             "RNAGAN top 5": ", ".join(ours.head(5))})
    print(overlap_rows, flush=True)
    out = {"n_train": len(tr), "n_test": len(te), "steps": steps, "rnagan_train_s": rnagan_s,
           "scvi_train_s": scvi_s, "scvi_epochs": scvi_epochs,
           "accuracy": {"RNAGAN stratify": rnagan_acc, "logistic regression (log1p)": lr_acc,
                        "nearest centroid (scVI latent)": centroid_acc},
           "embedding": embed_rows, "markers": overlap_rows,
           "median_top20_overlap": float(np.median([r["top20_overlap"] for r in overlap_rows]))}
    if DECOUPLER_CHECK:
        out["decoupler"] = pathway_agreement(model, test)
        print({k: v for k, v in out["decoupler"].items() if k != "per_set"}, flush=True)
    return out


def single_cells(genes: pd.Index, seed: int, with_pbmc: bool) -> anndata.AnnData:
    """immune_559 (counts; groups: 8 k-means clusters) [+ pbmc68k_reduced (cell types)], over ``genes``."""
    from sklearn.decomposition import PCA

    immune = anndata.read_h5ad(IMMUNE)
    immune.X = sparse.csr_matrix(immune.X, dtype=np.float32)
    logged = log_cpm(immune.X)
    pcs = PCA(30, random_state=seed).fit_transform(logged)
    immune.obs["group"] = [f"immune cluster {c}" for c in KMeans(8, n_init=10, random_state=seed).fit_predict(pcs)]
    sources = [immune]
    if with_pbmc:
        pbmc_cells = scsynth.data.pbmc68k_normalized()
        pbmc_cells.obs["group"] = "pbmc " + pbmc_cells.obs["bulk_labels"].astype(str)
        sources.append(pbmc_cells)
    parts = []
    for part in sources:
        part = part[:, genes].copy()
        parts.append(anndata.AnnData(part.X, obs=pd.DataFrame({"group": part.obs["group"].to_numpy()},
                                                              index=part.obs_names), var=pd.DataFrame(index=genes)))
    out = anndata.concat(parts) if len(parts) > 1 else parts[0]
    out.obs_names_make_unique()
    out.obs["modality"] = "sc"
    return out


CROSSMODAL_SETTINGS = {"immune + pbmc": True, "immune only": False}


def crossmodal(setting: str, pretrain_steps: int, steps: int, sizes: list[int], repeats: int, seed: int,
               n_hvg: int = 2000) -> dict:
    """``setting`` "immune + pbmc": genes shared by all three; "immune only": the bulk's top HVGs shared with immune."""
    with_pbmc = CROSSMODAL_SETTINGS[setting]
    raw = scsynth.data.geuvadis_lcl()
    immune_genes = anndata.read_h5ad(IMMUNE, backed="r").var_names
    shared = raw.var_names.isin(immune_genes)
    if with_pbmc:
        shared &= raw.var_names.isin(scsynth.data.pbmc68k_normalized().var_names)
    bulk_all = raw[:, shared].copy()
    if not with_pbmc:  # the most variable of the shared genes (Seurat v3 on the bulk counts, no labels)
        bulk_all = bulk_all[:, np.asarray(bulk_all.X.sum(0)).ravel() > 0].copy()
        hvg = sc.pp.highly_variable_genes(bulk_all, n_top_genes=n_hvg, flavor="seurat_v3", inplace=False)
        bulk_all = bulk_all[:, hvg["highly_variable"].to_numpy()].copy()
    genes = bulk_all.var_names
    bulk_all = bulk_all[np.asarray(bulk_all.X.sum(1)).ravel() > 0].copy()
    cells = single_cells(genes, seed, with_pbmc)
    print(f"crossmodal ({setting}): {len(genes)} genes, {cells.n_obs} cells in {cells.obs['group'].nunique()} "
          "groups", flush=True)
    RNAGAN.setup_anndata(cells, labels_key="group", is_count_data=False)
    start = time.perf_counter()
    pretrained = RNAGAN(cells, gene_sets="hallmark")
    pretrained.train(max_steps={"sc": pretrain_steps}, batch_size=64, seed=seed, enable_progress_bar=False)
    pretrain_s = time.perf_counter() - start
    y = bulk_all.obs["sex"].astype(str).to_numpy()
    rows = []
    for k in sizes:
        for r in range(repeats):
            rng = np.random.default_rng([seed, k, r])
            tr = np.concatenate([rng.choice(np.flatnonzero(y == s), k, replace=False) for s in ("Female", "Male")])
            te = np.setdiff1d(np.arange(len(y)), tr)
            train, test = bulk_all[tr].copy(), bulk_all[te].copy()
            female = (y[te] == "Female").astype(int)
            result = {"per_group": k, "repeat": r, "n_test": len(te)}
            for name, model in (("scratch", train_bulk_rnagan(train, steps, seed)),
                                ("pretrained + fine-tuned", train_bulk_rnagan(train, steps, seed, init=pretrained)),
                                ("pretrained, references only", pretrained)):
                refs = None if name != "pretrained, references only" else train
                probs = model.stratify(test, references=refs, groupby="sex", n_draws=20, n_refs=5, seed=seed)
                result[f"{name} acc"] = float((test.obs["rnagan"].astype(str) == y[te]).mean())
                result[f"{name} auroc"] = float(roc_auc_score(female, probs["Female"]))
            lr_pred, classes, lr_probs = lr_peer(train.X, y[tr], test.X)
            result["LR acc"] = float((lr_pred == y[te]).mean())
            result["LR auroc"] = float(roc_auc_score(female, lr_probs[:, classes.index("Female")]))
            rows.append(result)
            print(result, flush=True)
    frame = pd.DataFrame(rows).drop(columns=["repeat", "n_test"]).groupby("per_group").mean()
    return {"setting": setting, "n_genes": len(genes), "n_cells": cells.n_obs, "pretrain_steps": pretrain_steps,
            "pretrain_s": pretrain_s, "bulk_steps": steps, "runs": rows,
            "mean": frame.reset_index().to_dict("records")}


class StepTimer(Callback):
    """Seconds of every training batch."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.seconds.append(time.perf_counter() - self._start)


def speed(n_obs: int, n_genes: int, steps: int, seed: int) -> dict:
    import scvi

    immune = anndata.read_h5ad(IMMUNE)
    immune.X = sparse.csr_matrix(immune.X, dtype=np.float32)
    detected = np.asarray((immune.X > 0).sum(0)).ravel()
    immune = immune[:, np.sort(np.argsort(-detected)[:n_genes])].copy()
    adata = resample(immune, n_obs, dense=False, seed=seed)
    adata.obs["group"] = [f"group {i}" for i in np.random.default_rng(seed).integers(0, 10, n_obs)]
    RNAGAN.setup_anndata(adata, labels_key="group")
    model = RNAGAN(adata, gene_sets="hallmark")
    timers = {"warmup": StepTimer(), "adversarial": StepTimer()}
    with PeakRSS() as peak:
        # one stage at a time so each phase gets its own timer
        model.train(max_steps={"sc": steps // 2}, warmup_steps=steps // 2, batch_size=64, seed=seed,
                    enable_progress_bar=False, callbacks=[timers["warmup"]])
        model.train(max_steps={"sc": steps // 2}, warmup_steps=0, batch_size=64, seed=seed, enable_progress_bar=False,
                    callbacks=[timers["adversarial"]])
    queries = adata[:500].copy()
    start = time.perf_counter()
    model.stratify(queries, n_draws=20, n_refs=5, seed=seed, calibrate=False)
    stratify_rate = queries.n_obs / (time.perf_counter() - start)
    start = time.perf_counter()
    scsynth.tl.embed(queries, model)
    embed_rate = queries.n_obs / (time.perf_counter() - start)
    scvi_timer = StepTimer()
    scvi.settings.seed = seed
    vae_data = adata.copy()
    scvi.model.SCVI.setup_anndata(vae_data)
    vae = scvi.model.SCVI(vae_data)
    vae.train(max_epochs=1, batch_size=128, enable_progress_bar=False, callbacks=[scvi_timer], train_size=1.0)
    return {"cells": n_obs, "genes": n_genes, "gene_sets": model.gene_sets.n_sets, "learned": 8,
            "warmup_s_per_step": float(np.median(timers["warmup"].seconds[2:])),
            "adversarial_s_per_step": float(np.median(timers["adversarial"].seconds[2:])),
            "peak_rss_gib": peak.peak / 2**30, "stratify_samples_per_s": stratify_rate,
            "embed_samples_per_s": embed_rate, "scvi_s_per_step": float(np.median(scvi_timer.seconds[2:])),
            "steps_timed": steps}


def render(payload: dict, repeats: int) -> list[str]:
    """The markdown tables of every part in ``payload``."""
    md: list[str] = []
    if "bulk" in payload:
        res = payload["bulk"]
        mean = {"fold": "mean", **res["mean"]}
        md += [f"### Bulk: sex of GEUVADIS LCLs (85 samples, {res['n_genes']} genes, 5-fold CV, "
               f"{res['steps']} steps per fold, median {res['median_train_s']:.0f} s)", "",
               markdown_table([*res["folds"], mean], ["fold", "n_test", "RNAGAN_acc", "RNAGAN_auroc", "LR_acc",
                                                      "LR_auroc", "temperature", "train_s"]), "",
               "Markers (first fold's model, training samples); chromosome from the curated list, `auto` = not in it:",
               ""]
        md += [f"- {k}: {v['top10_on_X_or_Y']}/10 top genes on X/Y: {', '.join(v['top10_genes'])}; top pathways: "
               f"{', '.join(v['top5_pathways'])}" for k, v in res["markers"].items()]
        if "decoupler" in res:
            md += [""] + render_agreement(res["decoupler"], "first fold's held-out samples")[:-1]
        r = res["realism"]
        md += ["", f"Generated pseudo-samples vs held-out samples (all folds pooled, {r['n_per_side']} per side): "
               + ", ".join(f"{m} {r[m]['value']:.3g} (control ratio {r[m]['ratio']:.3g})" for m in REALISM_METRICS),
               ""]
    if "pbmc" in payload:
        res = payload["pbmc"]
        md += [f"### Single cell: pbmc68k_reduced cell types ({res['n_train']} training / {res['n_test']} held-out "
               f"cells; RNAGAN {res['steps']} steps in {res['rnagan_train_s']:.0f} s, scVI {res['scvi_epochs']} "
               f"epochs in {res['scvi_train_s']:.0f} s)", "",
               markdown_table([{"method": k, "held-out accuracy": v} for k, v in res["accuracy"].items()],
                              ["method", "held-out accuracy"]), "",
               markdown_table(res["embedding"], ["embedding", "dims", "silhouette", "kmeans_ari"]), "",
               markdown_table(res["markers"], ["cell type", "n_train", "top20_overlap", "RNAGAN top 5"]), "",
               f"Median overlap of the top 20 marker genes with Wilcoxon: {res['median_top20_overlap']:g}", ""]
        if "decoupler" in res:
            md += render_agreement(res["decoupler"], "held-out cells")
    for setting, res in payload.get("crossmodal", {}).items():
        cols = ["per_group"] + [f"{m} {s}" for m in ("scratch", "pretrained + fine-tuned",
                                                     "pretrained, references only", "LR") for s in ("acc", "auroc")]
        n_repeats = len(res["runs"]) // max(1, len(res["mean"]))
        md += [f"### Cross-modality ({setting}): bulk sex from k samples per sex ({res['n_genes']} genes shared with "
               f"the single cells; pretraining {res['pretrain_steps']} steps on {res['n_cells']} cells in "
               f"{res['pretrain_s']:.0f} s; {res['bulk_steps']} bulk steps per model; mean of {n_repeats} draws)",
               "", markdown_table(res["mean"], cols), ""]
    if "speed" in payload:
        res = payload["speed"]
        md += [f"### Speed ({res['cells']} cells x {res['genes']} genes, {res['gene_sets']} Hallmark sets + 8 "
               "learned pathways, 64 episodes of 5-20 references per step)", "",
               markdown_table([res], ["warmup_s_per_step", "adversarial_s_per_step", "peak_rss_gib",
                                      "stratify_samples_per_s", "embed_samples_per_s", "scvi_s_per_step"]), ""]
    return md


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", nargs="+", choices=["bulk", "pbmc", "crossmodal", "speed"],
                        default=["bulk", "pbmc", "crossmodal", "speed"])
    parser.add_argument("--bulk-steps", type=int, default=1000, help="bulk training batches (bulk part)")
    parser.add_argument("--sc-steps", type=int, default=1500, help="single-cell batches (pbmc part)")
    parser.add_argument("--scvi-epochs", type=int, default=400)
    parser.add_argument("--pretrain-steps", type=int, default=1500, help="single-cell pretraining (crossmodal)")
    parser.add_argument("--finetune-steps", type=int, default=400, help="bulk batches per model (crossmodal)")
    parser.add_argument("--settings", nargs="+", choices=list(CROSSMODAL_SETTINGS), default=list(CROSSMODAL_SETTINGS),
                        help="crossmodal pretraining data")
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 10, 20], help="bulk samples per sex")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--speed-cells", type=int, default=20000)
    parser.add_argument("--speed-genes", type=int, default=5000)
    parser.add_argument("--speed-steps", type=int, default=40)
    parser.add_argument("--no-decoupler", action="store_true",
                        help="skip the comparison of pathway activities with decoupler's ULM scores")
    parser.add_argument("--quick", action="store_true", help="few steps everywhere (checks the script only)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    global DECOUPLER_CHECK
    DECOUPLER_CHECK = not args.no_decoupler
    if args.quick:
        args.bulk_steps = args.sc_steps = args.pretrain_steps = args.finetune_steps = 20
        args.scvi_epochs, args.repeats, args.sizes, args.speed_cells, args.speed_steps = 5, 1, [5], 2000, 10
    scsynth.settings.verbosity = "warning"
    scsynth.settings.seed = args.seed
    warnings.filterwarnings("ignore")
    name = "rnagan_quick" if args.quick else "rnagan"
    # parts not run now keep their earlier results, so one part can be rerun alone
    previous = RESULTS / f"{name}.json"
    payload: dict = json.loads(previous.read_text()) if previous.is_file() else {}
    payload.setdefault("runs", {})
    run = {"machine": machine(), "args": vars(args)}
    if "bulk" in args.part:
        payload["bulk"] = bulk(args.bulk_steps, args.seed, 5)
    if "pbmc" in args.part:
        payload["pbmc"] = pbmc(args.sc_steps, args.scvi_epochs, args.seed)
    if "crossmodal" in args.part:
        payload.setdefault("crossmodal", {})
        for setting in args.settings:
            payload["crossmodal"][setting] = crossmodal(setting, args.pretrain_steps, args.finetune_steps, args.sizes,
                                                        args.repeats, args.seed)
    if "speed" in args.part:
        payload["speed"] = speed(args.speed_cells, args.speed_genes, args.speed_steps, args.seed)
    for part in args.part:
        payload["runs"][part] = run
    md = render(payload, args.repeats)
    print("\n".join(md), flush=True)
    write_json(name, payload)
    write_markdown(name, f"Machine: {run['machine']['processor']}, {run['machine']['cpus']} CPUs, "
                   f"torch {run['machine']['torch']}.\n\n" + "\n".join(md))


if __name__ == "__main__":
    main()
