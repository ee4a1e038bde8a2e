"""GeneSys' jobs on cells: embedding, trajectory classification, its accuracy and gene ranking."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import torch
from anndata import AnnData
from scipy import sparse

from .._settings import settings
from ..data._validate import check_anndata, check_int
from ..module._genesys import ENCODER_LIBRARY_SIZE
from ..train import TrajectoryBatches
from ._generated import GeneratedCells

#: cells decoded and sparsified at a time by generate (fixed: the noise stream depends on it)
GENERATE_BATCH = 4096


class GeneSysJobsMixin:
    """:meth:`get_latent_representation`, :meth:`classify`, :meth:`trajectory_accuracy` and :meth:`rank_genes`
    of :class:`~scsynth.model.GeneSys`, with their helpers."""

    def _generated_cells(
        self, z: torch.Tensor, library: np.ndarray | None, *, generator: torch.Generator, rng: np.random.Generator
    ) -> tuple[GeneratedCells, np.ndarray]:
        """Decode latent paths ``z`` (trajectories, time, latent) to cells, batch by batch, straight into sparse
        output; also returns each cell's library size (``library`` for counts, the values' total otherwise).

        Counts are negative binomial (gamma-Poisson from ``rng``); continuous values are drawn from the
        decoder's likelihood (:meth:`~scsynth.module.GeneSysModule.sample_values`, noise from ``generator``).
        """
        module = self.module
        flat = z.reshape(-1, module.n_latent)
        cells = GeneratedCells(len(flat), module.n_input, counts=self.is_count_data, model_name=type(self).__name__)
        lib = None if library is None else torch.as_tensor(library.reshape(-1))
        totals = []
        with torch.inference_mode():
            for start in range(0, len(flat), GENERATE_BATCH):
                zb = flat[start:start + GENERATE_BATCH]
                if lib is not None:
                    params = module.decode(zb, lib[start:start + GENERATE_BATCH].to(zb.device))
                    rate, theta = params["rate"].cpu().numpy(), params["theta"].cpu().numpy()
                    gamma = rng.standard_gamma(theta, size=rate.shape, dtype=np.float32) * (rate / theta)
                    counts = rng.poisson(gamma).astype(np.float32)
                    cells.add_values(counts, params["scale"], positive=True)
                else:
                    values, expected = module.sample_values(module.decode(zb, None), generator=generator)
                    values, expected = module.calibrate(values), module.calibrate(expected)
                    totals.append(cells.add_values(values, expected, positive=True))
        lib_obs = library.ravel() if library is not None else np.concatenate(totals).astype(np.float32)
        return cells, lib_obs

    def _input_matrix(self, adata: AnnData | None, layer: str | None) -> np.ndarray | sparse.csr_matrix:
        """Cells x model genes (matched by name) of ``adata`` (the training data when ``None``)."""
        if adata is None:
            self._check_has_data("embed or classify its own cells")
            return self._matrix()
        x = self._job_input(adata, layer)
        return sparse.csr_matrix(x) if sparse.issparse(x) else np.asarray(x)

    def _per_cell(self, fn, x, batch_size: int) -> np.ndarray:
        self.module.eval()
        out = []
        for start in range(0, x.shape[0], batch_size):
            chunk = x[start:start + batch_size]
            chunk = chunk.toarray() if sparse.issparse(chunk) else chunk
            out.append(fn(torch.as_tensor(np.asarray(chunk, dtype=np.float32))).cpu().numpy())
        return np.concatenate(out)

    def get_latent_representation(
        self, adata: AnnData | None = None, *, layer: str | None = None, batch_size: int = 1024
    ) -> np.ndarray:
        """Latent state of each cell on its own (posterior mean without trajectory context).

        Parameters
        ----------
        adata
            Cells with the model's genes (matched by name), on the training data's scale; the
            training data when ``None``.
        layer
            Layer of ``adata`` to read (the training layer when present, else ``.X``).
        batch_size
            Cells per forward pass.
        """
        self._check_trained()
        batch_size = check_int(batch_size, "batch_size")
        return self._per_cell(self.module.embed, self._input_matrix(adata, layer), batch_size)

    def classify(
        self,
        adata: AnnData | None = None,
        *,
        layer: str | None = None,
        key_added: str = "genesys_trajectory",
        batch_size: int = 1024,
    ) -> pd.DataFrame:
        """Trajectory probabilities of each cell, from the classifier on the cell's own belief.

        A cell whose label and time are shared by several trajectories (a progenitor) gets its
        probability spread over them.

        Parameters
        ----------
        adata
            Cells with the model's genes; written to ``obsm[key_added + "_probabilities"]`` (a
            DataFrame, one column per trajectory) and ``obs[key_added]`` (the most likely one).
            The training data when ``None`` (then nothing is written).
        layer, batch_size
            As in :meth:`get_latent_representation`.
        key_added
            Where to write.

        Returns
        -------
        The probabilities, cells x trajectories.
        """
        self._check_trained()
        batch_size = check_int(batch_size, "batch_size")
        probs = self._per_cell(self.module.classify_cells, self._input_matrix(adata, layer), batch_size)
        names = self.blueprint.trajectories
        target = self.adata if adata is None else adata
        frame = pd.DataFrame(probs, index=target.obs_names, columns=names)
        if adata is not None:
            adata.obsm[f"{key_added}_probabilities"] = frame
            adata.obs[key_added] = pd.Categorical(np.asarray(names)[probs.argmax(1)], categories=names)
        return frame

    def trajectory_accuracy(self, cells: np.ndarray | None = None, *, n_trajectories: int = 200,
                            seed: int | None = None) -> pd.DataFrame:
        """Classifier accuracy on trajectories assembled from ``cells`` (default: the test cells), per time step.

        Returns a table with the accuracy after seeing steps ``1..t`` for each ``t`` (the belief
        grows along the trajectory, so accuracy should rise as the fates diverge). Trajectories that
        cannot be assembled from ``cells`` (no cell at some step) are left out with a warning; the
        evaluated ones are in ``table.attrs["trajectories"]``.
        """
        self._check_trained()
        self._check_has_data("assemble trajectories")
        n_trajectories = check_int(n_trajectories, "n_trajectories")
        cells = np.asarray(self.test_indices if cells is None else cells)
        pools = self._pools(cells)
        rows = [r for r, row in enumerate(pools) if all(len(p) for p in row)]
        if not rows:
            raise ValueError("No trajectory has a cell at every time step among these cells.")
        names = self.blueprint.trajectories
        if len(rows) < len(names):
            skipped = [names[r] for r in range(len(names)) if r not in rows]
            warnings.warn(f"Trajectories {skipped} have no cell at some time step among these cells; the accuracy "
                          f"is over {[names[r] for r in rows]} only (chance at a shared step: 1/{len(rows)}).",
                          UserWarning, stacklevel=2)
        seed = settings.seed if seed is None else int(seed)
        batches = TrajectoryBatches(self._matrix(), pools, rows, n_batches=1, batch_size=n_trajectories, seed=seed)
        batch = batches.draw(np.random.default_rng(seed))
        self.module.eval()
        probs = self.module.classify_paths(batch["X"]).cpu().numpy()
        truth = batch["trajectory"].numpy()
        acc = (probs.argmax(-1) == truth[:, None]).mean(0)
        out = pd.DataFrame({"time": np.arange(1, probs.shape[1] + 1), "accuracy": acc,
                            "n_trajectories": n_trajectories})
        out.attrs["trajectories"] = [names[r] for r in rows]
        return out

    def rank_genes(
        self,
        adata: AnnData | None = None,
        *,
        n_samples: int = 200,
        n_top: int | None = None,
        seed: int | None = None,
        key_added: str = "genesys_rank_genes",
    ) -> pd.DataFrame:
        """Genes that drive each trajectory and each time transition, scored through the model.

        Two kinds of scores (GeneSys' gene-prioritisation use):

        - ``"trajectory"``: how much each gene pushes the classifier towards the trajectory — gradient
          x input of the log-odds ``log p(r) - log(1 - p(r))`` of trajectory ``r`` given the whole
          trajectory, with respect to the cells' log-normalised expression, averaged over ``n_samples`` training trajectories and their time steps
          (positive: evidence *for* the trajectory).
        - ``"transition"``: the model's expected log2 fold change of each gene (``log1p`` of expression
          normalised to 1e4 for counts, of the values otherwise) from step ``t`` to ``t + 1`` along
          ``n_samples`` prior rollouts of the trajectory (positive: rises).

        Parameters
        ----------
        adata
            Where to write the table (``uns[key_added]``); nothing is written when ``None``.
        n_samples
            Trajectories sampled per trajectory for each score.
        n_top
            Keep the top ``n_top`` genes of each (trajectory, kind, transition), by score for
            ``"trajectory"`` and by absolute score for ``"transition"``; all genes when ``None``.
        seed
            Seed (``scsynth.settings.seed`` when ``None``).
        key_added
            Key of ``adata.uns``.

        Returns
        -------
        Tidy table with columns ``trajectory``, ``kind``, ``time_from``, ``time_to``, ``gene``,
        ``score``, ``rank`` (1 = strongest), sorted by trajectory, kind, transition and rank.

        Examples
        --------
        >>> table = model.rank_genes(n_top=20)  # doctest: +SKIP
        >>> table.query("kind == 'transition' and time_from == 1")  # doctest: +SKIP
        """
        self._check_trained()
        self._check_has_data("rank genes (it draws training trajectories)")
        if adata is not None:
            check_anndata(adata)
        n_samples = check_int(n_samples, "n_samples")
        if n_top is not None:
            n_top = check_int(n_top, "n_top")
        seed = settings.seed if seed is None else int(seed)
        bp, module = self.blueprint, self.module
        module.eval()
        genes = np.asarray(self.var_names_)
        pools = self._pools(np.asarray(self.train_indices))
        x = self._matrix()
        frames = []
        for r, name in enumerate(bp.trajectories):
            draw = TrajectoryBatches(x, pools, [r], n_batches=1, batch_size=n_samples, seed=seed)
            batch = draw.draw(np.random.default_rng([seed, r]))
            attribution = self._trajectory_attribution(batch["X"], r)
            frames.append(self._ranked(name, "trajectory", 1, bp.n_times, genes, attribution, by_abs=False))
            log_expr = self._rollout_log_expression(r, n_samples, seed)
            for t in range(bp.n_times - 1):
                lfc = (log_expr[t + 1] - log_expr[t]) / np.log(2)
                frames.append(self._ranked(name, "transition", t + 1, t + 2, genes, lfc, by_abs=True))
        table = pd.concat(frames, ignore_index=True)
        if n_top is not None:
            table = table[table["rank"] <= n_top].reset_index(drop=True)
        table["trajectory"] = pd.Categorical(table["trajectory"], categories=bp.trajectories)
        table["kind"] = pd.Categorical(table["kind"], categories=["trajectory", "transition"])
        if adata is not None:
            adata.uns[key_added] = table
        return table

    def _trajectory_attribution(self, x: torch.Tensor, row: int) -> np.ndarray:
        module = self.module
        device = next(module.parameters()).device
        with torch.enable_grad():
            log_x = module.encoder_input(x.to(device)).detach().requires_grad_(True)
            e = module.encoder(log_x.reshape(-1, module.n_input)).reshape(*log_x.shape[:2], -1)
            logits = module.classifier(module.beliefs(e))[:, -1]
            others = torch.cat([logits[:, :row], logits[:, row + 1:]], 1)
            # log-odds of the trajectory: unlike log p, its gradient does not vanish once p is close to 1
            log_odds = logits[:, row] - torch.logsumexp(others, 1)
            (grad,) = torch.autograd.grad(log_odds.sum(), log_x)
        return (grad * log_x).mean((0, 1)).detach().cpu().numpy()

    def _rollout_log_expression(self, row: int, n_samples: int, seed: int) -> np.ndarray:
        """Mean log1p expected expression per time step (time, genes) over prior rollouts of one trajectory."""
        gen = torch.Generator().manual_seed(seed + row)
        z = self.module.rollout(torch.full((n_samples,), row, dtype=torch.long), generator=gen)
        with torch.inference_mode():
            params = self.module.decode(z, None)
        if self.is_count_data:
            log_expr = torch.log1p(params["scale"] * ENCODER_LIBRARY_SIZE)
        elif self.module.likelihood == "normal":
            log_expr = params["mean"].clamp_min(0)
        else:
            log_expr = torch.log1p(self.module.sample_values(params)[1])
        return log_expr.mean(0).cpu().numpy()

    @staticmethod
    def _ranked(trajectory: str, kind: str, time_from: int, time_to: int, genes: np.ndarray, score: np.ndarray,
                *, by_abs: bool) -> pd.DataFrame:
        order = np.argsort(-(np.abs(score) if by_abs else score), kind="stable")
        return pd.DataFrame({
            "trajectory": trajectory, "kind": kind, "time_from": time_from, "time_to": time_to,
            "gene": genes[order], "score": score[order].astype(np.float64), "rank": np.arange(1, len(order) + 1),
        })
