"""RNAGAN's ``stratify``: every sample scored against every group's reference sets."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import torch
from anndata import AnnData

from .._settings import settings
from ..data import check_obs_key
from ..data._validate import check_anndata, check_int
from ._rnagan_inputs import RNAGANTrainingWarning, draw_sets

#: spare reference sets per group, as a fraction of ``n_draws`` (every target scores a random ``n_draws`` of
#: the sets not holding itself; a target left short gets sets of its own). Encoding the sets is most of the
#: cost of a small query, so few spares (25% instead of 100%: 1.25x faster at 500 queries x 5000 genes).
SPARE_SETS = 0.25
#: floats of first-layer activations per chunk of (target, set) pairs (64 MiB in float32)
PAIR_CHUNK = 2**24


class InputRows:
    """The network input of ``adata`` (a model's own, checked, data), computed only for the rows asked for."""

    def __init__(self, model, adata: AnnData) -> None:
        self.model, self.adata = model, adata
        self.shape = (adata.n_obs, len(model.var_names_))

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows)
        used, where = np.unique(rows, return_inverse=True)
        x = self.model._network_input(self.adata[used], dense=False)  # log1p of the nonzeros, as in training
        x = x.toarray() if hasattr(x, "toarray") else x
        return x[where.reshape(rows.shape)]


def dense_rows(x, rows: np.ndarray) -> np.ndarray:
    """Rows of a dense or sparse matrix (or :class:`InputRows`) as a dense float32 array."""
    out = x[rows]
    return np.asarray(out.toarray() if hasattr(out, "toarray") else out, dtype=np.float32)


def shared_draws(rng: np.random.Generator, pool: np.ndarray, own: np.ndarray, n_draws: int, size: int,
                 n_sets: int) -> tuple[np.ndarray, np.ndarray]:
    """``(table, choice)``: ``n_sets`` sets of ``size`` members of ``pool``; ``n_draws`` of them per target.

    Each target (``own``: its row in the pool's matrix, or -1) gets a random ``n_draws`` of the sets
    that do not contain its own row; sets for a target short of those are drawn for it alone and
    appended to the table. ``choice`` (targets, n_draws) indexes the table (sets, size).
    """
    table = draw_sets(rng, pool, n_sets, size)
    keys = rng.random((len(own), n_sets))
    inside = np.flatnonzero(np.isin(own, pool))
    for s in range(0, len(inside), 2**16):  # targets in the pool: rule out the sets holding their own row
        part = inside[s:s + 2**16]
        keys[part] = np.where((table[None] == own[part, None, None]).any(-1), np.inf, keys[part])
    choice = np.argpartition(keys, n_draws - 1, axis=1)[:, :n_draws]  # n_draws <= n_sets
    bad = np.isinf(np.take_along_axis(keys, choice, 1))
    extra, n_table = [], n_sets
    for i in np.flatnonzero(bad.any(1)):
        need = int(bad[i].sum())
        extra.append(draw_sets(rng, pool[pool != own[i]], need, size))
        choice[i, bad[i]] = np.arange(n_table, n_table + need)
        n_table += need
    return (np.concatenate([table, *extra]) if extra else table), choice


class StratifyMixin:
    """:meth:`stratify` of :class:`~scsynth.model.RNAGAN` and its helpers (reference pool, group logits,
    temperature fit, averages over reference draws, the warning about results not to trust)."""

    def _reference_pool(self, references: AnnData | str | None, adata: AnnData, groupby: str | None,
                        adata_x: np.ndarray | None = None):
        """(log-normalised reference matrix, group names per reference, reference index in adata or -1).

        ``adata_x``, the network input of ``adata`` when already computed, is reused where the references
        are ``adata``'s own samples.
        """
        if references is None:
            self._check_has_data("draw references from its training data (pass references=)")
            same = adata is self.adata and adata_x is not None
            ref_x = adata_x if same else InputRows(self, self.adata)  # only the rows drawn are computed
            labels = self.adata.obs[self.labels_key].astype(str).to_numpy()
            own = np.full(len(labels), -1)
            if adata is self.adata:
                own = np.arange(len(labels))
            return ref_x, labels, own
        if isinstance(references, str):
            if references not in adata.obs:
                raise KeyError(f"references={references!r} is not a column of adata.obs.")
            col = adata.obs[references]
            keep = col.notna().to_numpy()
            ref_x = adata_x[keep] if adata_x is not None else self._network_input(adata[keep])
            return ref_x, col[keep].astype(str).to_numpy(), np.flatnonzero(keep)
        key = groupby or self.labels_key
        col = check_obs_key(references, key, what="groupby")
        ref_x = self._network_input(references, name="references", dense=False)
        return ref_x, col.astype(str).to_numpy(), np.full(references.n_obs, -1)

    def stratify(
        self,
        adata: AnnData,
        *,
        references: AnnData | str | None = None,
        groupby: str | None = None,
        n_draws: int = 20,
        n_refs: int = 5,
        calibrate: bool = True,
        key_added: str = "rnagan",
        seed: int | None = None,
        batch_size: int = 2048,
    ) -> pd.DataFrame:
        """Score every sample against every group's reference sets; the best group wins.

        For each sample and group, ``n_draws`` reference sets of ``n_refs`` samples of that group are
        drawn (never containing the sample itself) and the discriminator's logits are averaged; a
        softmax over groups turns the mean logits into probabilities. The sets come from one table of
        ``2 * n_draws`` sets per group that all samples share (each sample scores a random ``n_draws``
        of them), so each set and each sample is encoded once. Groups need not have been seen in
        training: any labelled references work, down to ``n_refs`` samples per group.

        The discriminator's logits are not probabilities (membership of one set, not a choice among
        groups), so by default they are calibrated: each reference (up to 50 per group) is scored
        against the groups with itself left out, and one temperature is fitted to their known labels
        by maximum likelihood. It changes the probabilities, never the winning group.

        A result not to trust warns (:class:`RNAGANTrainingWarning`, with what to do): every sample assigned
        to one group (with more samples than groups), or a model whose training ended at chance
        (``model.at_chance_``).

        Parameters
        ----------
        adata
            Samples to stratify (genes matched by name).
        references
            Labelled references: an AnnData with ``obs[groupby]``, the name of an ``adata.obs`` column
            (samples with a label are the references; the others are only scored), or ``None`` for the
            training samples and groups.
        groupby
            Group column of a reference AnnData (default: the model's ``labels_key``).
        n_draws, n_refs
            Reference sets per (sample, group) and their size.
        calibrate
            Fit the softmax temperature on the references (leave one out); ``False``: temperature 1.
        key_added
            ``obs[key_added]`` (best group), ``obsm[key_added + "_scores"]`` (probabilities),
            ``uns[key_added]["params"]`` (including the fitted ``temperature``).
        seed, batch_size
            Seed of the draws; episodes per forward pass.

        Returns
        -------
        The probabilities, samples x groups.
        """
        self._check_trained()
        check_anndata(adata)
        if references is not None and not isinstance(references, str):
            check_anndata(references, "references")
        n_draws, n_refs = check_int(n_draws, "n_draws"), check_int(n_refs, "n_refs")
        batch_size = check_int(batch_size, "batch_size")
        seed = settings.seed if seed is None else int(seed)
        rng = np.random.default_rng(seed)
        target_x = self._network_input(adata)
        ref_x, ref_labels, ref_own = self._reference_pool(references, adata, groupby, target_x)
        names = sorted(set(ref_labels))
        sizes = {g: int((ref_labels == g).sum()) for g in names}
        small = {g: n for g, n in sizes.items() if n < n_refs}
        if small:
            raise ValueError(f"Groups with fewer references than n_refs={n_refs}: {small}; lower n_refs or add "
                             "references.")
        if len(names) < 2:
            raise ValueError(f"Stratifying needs references of at least 2 groups; got only {names}.")
        own_of_target = np.full(adata.n_obs, -1)
        if references is None and adata is self.adata or isinstance(references, str):
            own_of_target[ref_own[ref_own >= 0]] = np.flatnonzero(ref_own >= 0)
        logits = self._group_logits(target_x, own_of_target, ref_x, ref_labels, names, n_draws, n_refs, rng,
                                    batch_size)
        temperature = 1.0
        if calibrate:
            temperature = self._fit_temperature(ref_x, ref_labels, names, n_draws, n_refs, rng, batch_size)
        logits = logits / temperature
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        frame = pd.DataFrame(probs, index=adata.obs_names, columns=names)
        winners = np.unique(probs.argmax(1))
        one_group = names[winners[0]] if len(winners) == 1 and adata.n_obs > len(names) else None
        message = self._stratify_warning(adata.n_obs, one_group, len(names))
        if message:
            warnings.warn(message, RNAGANTrainingWarning, stacklevel=2)
        adata.obs[key_added] = pd.Categorical(np.asarray(names)[probs.argmax(1)], categories=names)
        adata.obsm[f"{key_added}_scores"] = frame
        adata.uns[key_added] = {"params": {"n_draws": n_draws, "n_refs": n_refs, "seed": seed,
                                           "calibrate": calibrate, "temperature": temperature,
                                           "references": references if isinstance(references, str) else
                                           ("training data" if references is None else "AnnData")}}
        return frame

    def _stratify_warning(self, n_obs: int, one_group: str | None, n_groups: int) -> str | None:
        """Why not to trust :meth:`stratify`'s result (all samples in ``one_group``, a model at chance)."""
        last = {name.partition("_")[0]: name for name in self.at_chance_}  # each modality's latest stage
        chance = ", ".join(f"{k} {self.episode_accuracy_[k]:.2f}" for k in last.values()
                           if self.at_chance_[k])
        if one_group is None and not chance:
            return None
        fix = ("Train longer (more max_steps in model.train; CLI --sc-steps/--bulk-steps) and "
               "check that the reference groups differ in expression.")
        verdict = f"training ended at chance (episode accuracy {chance}; see model.at_chance_)"
        if one_group is None:
            return f"This RNAGAN's {verdict}: its group assignments are close to arbitrary. {fix}"
        return (f"stratify assigned all {n_obs} samples to {one_group!r} although the references hold "
                f"{n_groups} groups: {verdict if chance else 'the model may be at chance'}. {fix} If these "
                "samples are all of one group, ignore this warning.")

    #: score pairs through the factorised first layer (False: the plain per-episode discriminator, same draws)
    _factorised: bool = True

    def _group_logits(self, target_x, own_of_target, ref_x, ref_labels, names, n_draws, n_refs, rng,
                      batch_size, *, factorised: bool | None = None):
        """Mean discriminator logit of each target against ``n_draws`` sets of each group (own row left out).

        Each group's sets come from one shared table (:func:`shared_draws`), so every set and every
        target is encoded once; only the (target, set) sums go through the rest of the network.
        """
        factorised = self._factorised if factorised is None else factorised
        disc = self.module.discriminator
        self.module.eval()
        parts = codes = None
        if factorised:
            with torch.inference_mode():
                parts = disc.first_layer_parts()
                codes = self._encode(lambda t: disc.target_codes(t, parts), target_x, batch_size)
        draws = [shared_draws(rng, np.flatnonzero(ref_labels == g), own_of_target, n_draws, n_refs,
                              n_draws + max(2, int(np.ceil(SPARE_SETS * n_draws)))) for g in names]
        # one table of all groups' sets (choice: targets x groups x draws into it), so one pass encodes them
        offsets = np.cumsum([0] + [len(table) for table, _ in draws])[:-1]
        table = np.concatenate([table for table, _ in draws])
        choice = np.stack([c + o for (_, c), o in zip(draws, offsets, strict=True)], 1)
        used = np.unique(table)
        pool = dense_rows(ref_x, used)  # every reference any set holds, once
        return self._score_table(disc, target_x, codes, parts, pool, np.searchsorted(used, table), choice,
                                 batch_size, logit=True)

    @torch.inference_mode()
    def _score_table(self, disc, target_x, codes, parts, ref_x, table, choice, batch_size, *, logit: bool):
        """Mean over draws of the logit (or the embedding) of each target against its sets ``table[choice]``.

        ``table`` (sets, n_refs) indexes the rows of ``ref_x`` (dense), ``choice`` (targets, [groups,] draws)
        the table; the result is (targets, [groups,] [embedding]).

        With ``parts`` (:meth:`EpisodeDiscriminator.first_layer_parts`) and the targets' ``codes``, the
        factorised path; without, every (target, set) episode through the plain discriminator.
        """
        if parts is None:
            fn = disc if logit else disc.embed
            if choice.ndim == 2:
                return self._over_draws(fn, target_x, ref_x, table[choice], batch_size)
            return np.stack([self._over_draws(fn, target_x, ref_x, table[choice[:, j]], batch_size)
                             for j in range(choice.shape[1])], 1)
        n_refs = table.shape[1]
        sets = self._encode(lambda r: disc.set_codes(r.reshape(-1, n_refs, r.shape[-1]), parts),
                            table.reshape(-1), batch_size * n_refs, rows_of=ref_x)
        fn = disc.logit_codes if logit else disc.embed_codes
        choice = torch.as_tensor(np.ascontiguousarray(choice), device=sets.device)
        lead = (slice(None),) + (None,) * (choice.ndim - 1)  # a target's code against each of its sets
        step = max(1, PAIR_CHUNK // (choice[0].numel() * codes.shape[1]))
        out = [fn(codes[s:s + step][lead], sets[choice[s:s + step]]).double().mean(choice.ndim - 1)
               for s in range(0, len(choice), step)]
        return torch.cat(out).cpu().numpy()

    @torch.inference_mode()
    def _encode(self, fn, x, batch_size: int, *, rows_of=None) -> torch.Tensor:
        """``fn`` over ``x`` in chunks of ``batch_size`` rows (``x``: rows of ``rows_of`` if given)."""
        device = next(self.module.parameters()).device
        chunks = (x[s:s + batch_size] for s in range(0, len(x), batch_size))
        return torch.cat([fn(torch.as_tensor(c if rows_of is None else dense_rows(rows_of, c), device=device))
                          for c in chunks])

    def _fit_temperature(self, ref_x, ref_labels, names, n_draws, n_refs, rng, batch_size, per_group: int = 50):
        """Softmax temperature that maximises the likelihood of the references' own labels (leave one out)."""
        from scipy.optimize import minimize_scalar
        from scipy.special import log_softmax

        rows = np.concatenate([rng.permutation(np.flatnonzero(ref_labels == g))[:per_group] for g in names])
        logits = self._group_logits(dense_rows(ref_x, rows), rows, ref_x, ref_labels, names, n_draws, n_refs,
                                    rng, batch_size)
        truth = np.searchsorted(names, ref_labels[rows])

        def nll(log_t: float) -> float:
            return -log_softmax(logits / np.exp(log_t), axis=1)[np.arange(len(rows)), truth].mean()

        return float(np.exp(minimize_scalar(nll, bounds=(-6.0, 6.0), method="bounded").x))

    @torch.inference_mode()
    def _over_draws(self, fn, target_x: np.ndarray, ref_x: np.ndarray, picks: np.ndarray, batch_size: int):
        """``fn(target, refs)`` for every (sample, draw) of ``picks`` (samples, draws, n_refs), averaged over draws."""
        n, draws, k = picks.shape
        flat_t, flat_r = np.repeat(np.arange(n), draws), picks.reshape(n * draws, k)
        device = next(self.module.parameters()).device
        out = [fn(torch.as_tensor(target_x[flat_t[sl]], device=device),
                  torch.as_tensor(ref_x[flat_r[sl]], device=device)).double().cpu().numpy()
               for sl in (slice(s, s + batch_size) for s in range(0, n * draws, batch_size))]
        out = np.concatenate(out)
        return out.reshape(n, draws, *out.shape[1:]).mean(1)
