"""RNAGAN's training stages: which stages run, the plan line, one stage's run and the chance warning."""

from __future__ import annotations

import ctypes
import gc
import math
import sys
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd

from .._constants import REALISM_KEY
from .._deprecation import warn_renamed
from ..train import DivergenceGuard, TrajectoryDataModule
from ..train._progress import BatchProgressBar
from ._rnagan_inputs import CHANCE_ACCURACY, DEFAULT_STEPS, MODALITIES, MODALITY_WORDS, RNAGANTrainingWarning

#: epoch metrics shown next to RNAGAN's progress bars
BAR_METRICS = {"episode_accuracy_train": "accuracy", "discriminator_loss_train": "d_loss",
                "generator_loss_train": "g_loss"}


def stage_budget(max_steps: int | Mapping[str, int] | None) -> dict[str, int]:
    """Steps per modality from :meth:`RNAGAN.train`'s ``max_steps``: one number for each stage, or per modality."""
    if max_steps is None:
        return dict(DEFAULT_STEPS)
    if isinstance(max_steps, Mapping):
        unknown = sorted(set(max_steps) - set(MODALITIES))
        if unknown:
            raise ValueError(f"max_steps has unknown modalities {unknown}; use {{'sc': n, 'bulk': m}}.")
        budget = {m: max_steps.get(m, DEFAULT_STEPS[m]) for m in MODALITIES}
    else:
        budget = dict.fromkeys(MODALITIES, max_steps)
    for m, n in budget.items():
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise ValueError(f"max_steps[{m!r}] must be a non-negative integer, got {n!r}.")
    return {m: int(n) for m, n in budget.items()}


def renamed_step_budgets(max_steps, trainer_kwargs: dict):
    """``max_steps``, or the deprecated ``sc_steps=`` / ``bulk_steps=`` (popped from ``trainer_kwargs``, warned)."""
    old = {m: trainer_kwargs.pop(f"{m}_steps") for m in MODALITIES if f"{m}_steps" in trainer_kwargs}
    if not old:
        return max_steps
    if max_steps is not None:
        raise TypeError("RNAGAN.train: pass max_steps only (sc_steps/bulk_steps are its deprecated names), not both.")
    warn_renamed(" / ".join(f"{m}_steps" for m in old), "max_steps={'sc': ..., 'bulk': ...}", where="RNAGAN.train")
    return old


def release_freed_memory() -> None:
    """Give the heap memory a stage freed back to the system (no-op off glibc).

    glibc keeps freed heap pages, so the next stage would start at this one's peak (about 0.6 GiB at 20k
    cells x 5000 genes).
    """
    if not sys.platform.startswith("linux"):
        return
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # musl or another libc: nothing to trim
        pass


class StagesMixin:
    """:class:`~scsynth.model.RNAGAN`'s stage logic, used by its ``train``."""

    def _stages(self, budget: dict[str, int], warmup_steps: int | None) -> list[tuple]:
        """(modality, stage name, batches per epoch, epochs, plan options) of each stage :meth:`train` runs.

        A stage runs when its modality has samples and steps. The first stage that runs starts with the
        discriminator alone, so that it learns membership before easy-to-spot early fakes can dominate it.
        """
        modalities = self._modalities(self.adata)
        present = [m for m in MODALITIES if budget[m] > 0 and (modalities == m).any()]
        if not present:
            return []
        first = present[0]
        warmup = budget[first] // 2 if warmup_steps is None else min(int(warmup_steps), budget[first])
        stages = [(first, f"{first}_warmup", warmup, {"fake_weight": 0.0, "train_generator": False}),
                  (first, first, budget[first] - warmup, {})] + [(m, m, budget[m], {}) for m in present[1:]]
        out = []
        for modality, name, steps, extra in stages:
            if steps <= 0:
                continue
            epochs = math.ceil(steps / 50)  # history rows of about 50 batches; steps rounded up to fill them
            out.append((modality, name, math.ceil(steps / epochs), epochs, extra))
        return out

    def training_plan(
        self,
        max_steps: int | Mapping[str, int] | None = None,
        bulk_steps: int | None = None,
        *,
        warmup_steps: int | None = None,
        batch_size: int = 64,
        option_names: Mapping[str, str] | None = None,
    ) -> str:
        """One line saying which stages :meth:`train` runs with these budgets, with how many steps each.

        :meth:`train` logs it (``logging.INFO``) before it starts; the CLI prints it. A step is one batch
        of ``batch_size`` episodes. Budgets of a modality the data do not have are ignored, and said so.

        Parameters
        ----------
        max_steps, warmup_steps, batch_size
            As in :meth:`train`. (``sc_steps, bulk_steps`` as two numbers: deprecated.)
        bulk_steps
            Deprecated: ``max_steps={"sc": ..., "bulk": ...}``.
        option_names
            How the line names the budgets, ``{"sc": "max_steps['sc']", "bulk": "max_steps['bulk']"}`` by
            default (the CLI passes its flags).

        Examples
        --------
        >>> model.training_plan({"sc": 200, "bulk": 200})  # doctest: +SKIP
        'RNAGAN plan: bulk only: max_steps['sc'] ignored (no single-cell samples); bulk stage: 100 discriminator
        warm-up + 100 adversarial steps of 64 episodes.'
        """
        self._check_has_data("plan training")
        names = {m: f"max_steps[{m!r}]" for m in MODALITIES} | dict(option_names or {})
        if bulk_steps is not None:  # the 0.2 signature training_plan(sc_steps, bulk_steps)
            warn_renamed("training_plan(sc_steps, bulk_steps)", "training_plan({'sc': ..., 'bulk': ...})",
                         where="RNAGAN.training_plan")
            max_steps = {"sc": DEFAULT_STEPS["sc"] if max_steps is None else max_steps, "bulk": bulk_steps}
        budget = stage_budget(max_steps)
        counts = pd.Series(self._modalities(self.adata)).value_counts()
        have = [m for m in MODALITIES if counts.get(m, 0) > 0]
        head = (f"{MODALITY_WORDS[have[0]]} only" if len(have) == 1 else
                f"{counts['sc']} single-cell + {counts['bulk']} bulk samples")
        notes = [f"{names[m]} ignored (no {MODALITY_WORDS[m]} samples)" for m in MODALITIES
                 if m not in have and budget[m] > 0]
        notes += [f"{m} stage skipped ({names[m]} is 0)" for m in have if budget[m] == 0]
        stages = self._stages(budget, warmup_steps)
        parts = []
        for m in have:
            steps = {name: n * epochs for mod, name, n, epochs, _ in stages if mod == m}
            if not steps:
                continue
            kinds = [f"{steps[k]} {what}" for k, what in ((f"{m}_warmup", "discriminator warm-up"),
                                                           (m, "adversarial")) if k in steps]
            text = f"{m} stage: {' + '.join(kinds)} steps"
            if sum(steps.values()) != budget[m]:
                text += f" ({names[m]} {budget[m]} rounded up to whole history rows of about 50 steps)"
            if m == "bulk" and stages[0][0] == "sc":
                text += " (fine-tuning, learned pathways frozen)"
            parts.append(text)
        body = "; then ".join(parts) if parts else "nothing to train"
        return (f"RNAGAN plan: {head}" + (f": {'; '.join(notes)}" if notes else "")
                + f"; {body}" + (f", of {batch_size} episodes each." if parts else "."))

    def _check_stages(self, budget: dict[str, int], warmup_steps: int | None, chosen: set, modalities: np.ndarray,
                      labels: np.ndarray) -> list[tuple]:
        """:meth:`_stages` of :meth:`train`, with its warnings (``modalities``, ``labels``: training samples'); raises
        when nothing would train."""
        for mod in MODALITIES:
            sizes = pd.Series(labels[modalities == mod]).value_counts()
            if (sizes < 2).any():
                warnings.warn(f"{mod} groups with a single training sample take no part in training (no reference "
                              f"set can be drawn for them): {sorted(sizes.index[sizes < 2])}.", stacklevel=3)
        stages = self._stages(budget, warmup_steps)
        if not stages:
            raise ValueError(f"Nothing to train: no modality has both samples and steps (budgets {budget}, "
                             f"modalities present: {sorted(set(modalities))}).")
        for mod in MODALITIES:  # a budget the user chose for data that are not there: say so
            if mod in chosen and budget[mod] > 0 and not (modalities == mod).any():
                runs = " and ".join(f"max_steps[{m!r}]" for m in dict.fromkeys(s[0] for s in stages))
                warnings.warn(f"max_steps[{mod!r}]={budget[mod]} is ignored: the data hold no "
                              f"{MODALITY_WORDS[mod]} samples. The stage that runs is budgeted by {runs}.",
                              RNAGANTrainingWarning, stacklevel=3)
        first = stages[0][0]
        if warmup_steps is not None and int(warmup_steps) > budget[first] > 0:
            warnings.warn(f"warmup_steps={warmup_steps} exceeds max_steps[{first!r}]={budget[first]}: the {first} "
                          f"stage runs {budget[first]} discriminator warm-up steps and no adversarial ones (its "
                          f"generator is not trained); raise max_steps[{first!r}] or lower warmup_steps.",
                          RNAGANTrainingWarning, stacklevel=3)
        return stages

    def _warn_at_chance(self, last: dict[str, str], budget: dict[str, int], plan_kwargs: dict | None) -> None:
        """Warn (:class:`RNAGANTrainingWarning`) for each modality whose last stage ``last[modality]`` is at chance."""
        for modality, name in last.items():
            if self.at_chance_.get(name):
                warnings.warn(self._chance_message(modality, name, budget[modality], plan_kwargs),
                              RNAGANTrainingWarning, stacklevel=3)

    def _chance_message(self, modality: str, name: str, steps: int, plan_kwargs: dict | None) -> str:
        """What a stage that ended at chance means and what to do, for :meth:`train`'s warning."""
        lr = float((plan_kwargs or {}).get("lr_discriminator", 1e-3))
        more = max(4 * steps, DEFAULT_STEPS[modality])
        return (
            f"RNAGAN's {modality} stage ended at chance: its kept weights get "
            f"{self.episode_accuracy_[name]:.2f} of the training episodes right (chance is 0.5; below "
            f"{CHANCE_ACCURACY} counts as chance), so the model cannot tell the groups of "
            f"obs[{self.labels_key!r}] apart: stratify's groups are close to arbitrary (often one for all "
            f"samples). Train longer (e.g. max_steps={{{modality!r}: {more}}}; it was {steps}), check that the groups "
            f"of obs[{self.labels_key!r}] differ in expression, or, if the accuracy rose and then fell "
            f"(model.histories_[{name!r}]), lower the learning rate "
            f"(plan_kwargs={{'lr_discriminator': {lr / 3:.2g}}})."
        )

    def _run_stage(self, name, plan, data, rows, max_epochs, accelerator, devices, seed,
                   trainer_kwargs, realism=None) -> DivergenceGuard:
        from ..train import BestStateTracker

        # adversarial training can leave the discriminator in a worse state than it reached (a late collapse
        # flattens its logits): keep the weights of the history row where it told episodes apart best
        best = BestStateTracker("episode_accuracy_train", mode="max")
        rates = (f"{{'lr_discriminator': {min(plan.lr_discriminator / 10, 1e-3):g}, "  # at most the defaults
                 f"'lr_generator': {min(plan.lr_generator / 10, 1e-3):g}}}")
        guard = DivergenceGuard("RNAGAN", f"stage {name}", hint=(
            f"Lower the learning rates, e.g. plan_kwargs={rates} (they were lr_discriminator="
            f"{plan.lr_discriminator:g}, lr_generator={plan.lr_generator:g})."))
        modality, _, kind = name.partition("_")
        # per batch: a history row of ~50 batches can take minutes on large data
        bar = BatchProgressBar(f"RNAGAN {modality} {'warm-up' if kind == 'warmup' else 'adversarial'}",
                               total=data.n_batches * max_epochs, postfix_keys=BAR_METRICS)
        module = TrajectoryDataModule(data, None, train_idx=rows, val_idx=np.array([], dtype=int),
                                      test_idx=np.array([], dtype=int))
        callbacks = [*(trainer_kwargs.pop("callbacks", None) or []), best, guard]  # the user's (from train())
        if realism is not None:
            callbacks.append(realism)
            trainer_kwargs["history_extras"] = lambda: {REALISM_KEY: realism.frame()}
        rows_before = len(self.histories_.get(name, {}).get("episode_accuracy_train", ()))
        self.run_training(name, training_plan=plan, data_splitter=module, max_epochs=max_epochs, seed=seed,
                          accelerator=accelerator, devices=devices, progress_bar=bar, callbacks=callbacks,
                          limit_val_batches=0, **trainer_kwargs)
        release_freed_memory()
        self.episode_accuracy_.pop(name, None)
        self.at_chance_.pop(name, None)
        if best.state is not None and not guard.diverged:  # after a divergence the guard's weights stay
            self.module.load_state_dict(best.state)
            self.best_epochs_[name] = int(best.epoch)
            self.episode_accuracy_[name] = float(best.best)
            self.at_chance_[name] = bool(best.best < CHANCE_ACCURACY)
        if realism is not None and not guard.diverged:
            self._keep_realism_best(name, realism, rows_before)
        return guard

    def _keep_realism_best(self, name: str, realism, rows_before: int) -> None:
        """File a stage's best realism check; with its weights restored, the kept row is the check's."""
        if realism.best_step is None:
            return
        self.realism_best_[name] = {
            "metric": realism.metric, "generator_step": int(realism.best_step), "value": float(realism.best_value),
            "control": float(realism.control_), "every": int(realism.every), "restored": bool(realism.restored)}
        if not realism.restored:
            return
        self.module.load_state_dict(realism.best_state)  # the callback restored it; the accuracy row's came after
        epoch = next(e for e, step, _ in realism.records if step == realism.best_step)
        accuracy = np.ravel(self.histories_[name]["episode_accuracy_train"].to_numpy())
        self.best_epochs_[name] = int(epoch)
        self.episode_accuracy_[name] = float(accuracy[min(rows_before + epoch, len(accuracy) - 1)])
        self.at_chance_[name] = bool(self.episode_accuracy_[name] < CHANCE_ACCURACY)
