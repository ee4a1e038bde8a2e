"""How GRouNdGAN's two stages plug into the shared GAN training: options, titles, histories, steps, data start."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..data import get_matrix
from ..nn import init_output_at_data
from ._marginals import fit_groundgan_marginals
from ._profile_stats import profile_stats


class StagesMixin:
    """Per-stage training hooks of :class:`~scsynth.model.GRouNdGAN` (stage 1 the controller, 2 the targets)."""

    @property
    def _default_plan_kwargs(self) -> dict[str, Any]:  # type: ignore[override]
        kwargs = self._stage_plan_kwargs[self.module.stage]
        return self._conditional_plan_kwargs if self.module.conditional_stage else kwargs

    def _history_stage(self) -> str:
        return "controller" if self.module.stage == 1 else "generator"

    def _progress_title(self) -> str:
        return "Stage 1/2: causal controller" if self.module.stage == 1 else "Stage 2/2: target generators"

    def _early_stopping_monitor(self) -> str:  # the conditional stage 2 has no critic: its held-out energy score
        monitor = "generator_conditional_validation" if self.module.conditional_stage else None
        return monitor or super()._early_stopping_monitor()

    def _training_stage(self) -> tuple[str | None, str]:
        if self.module.stage == 1:
            return "stage 1, causal controller", "controller_plan_kwargs"
        return "stage 2, target generators", "plan_kwargs"

    def _record_steps(self, n_steps: int) -> None:
        if self.module.stage == 1:
            self.controller_steps_ += n_steps
        else:
            self.n_generator_steps_ += n_steps

    def _before_first_training(self, train_indices: np.ndarray) -> None:
        """A new controller's output layer starts at the training cells (ScGAN's ``output_init="data"``).

        Runs before the model's first training only, so never for a pretrained controller (stage 2 comes first).
        """
        if self.module.stage != 1 or self.controller_output_init != "data":
            return
        module = self.module  # the controller's genes are the model's, normalised over the model's genes
        mean, fraction, _ = profile_stats(self.adata, self.registry_["setup_args"].get("layer"), train_indices,
                                          module.normalize.library_size, columns=module.gene_index.cpu().numpy())
        init_output_at_data(module.controller.generator.output, mean, fraction)

    def upgrade_loaded_attributes(self) -> None:
        """Models saved by scsynth <= 0.2 kept stage 2's history in ``history_`` (stage 1's was set above)."""
        if "generator" not in self.histories_ and self.history_ and self.n_generator_steps_:
            self.histories_ = {**self.histories_, "generator": self.history_}

    def _on_trained(self, train_indices: np.ndarray) -> None:
        x = get_matrix(self.adata, self.registry_["setup_args"].get("layer"))
        cols = self.module.gene_index.cpu().numpy()
        self.train_library_sizes_ = np.asarray(x[train_indices][:, cols].sum(axis=1)).ravel().astype(np.float32)

    def _fit_marginals(self, train_indices: np.ndarray, seed: int, *, fit: bool) -> None:
        # fitted on whole cells after stage 2; a new stage 1 changes the TFs, so its tables would be stale
        if fit and self.module.stage == 2:
            fit_groundgan_marginals(self, train_indices, seed)
        else:
            self.module.marginals.reset()
