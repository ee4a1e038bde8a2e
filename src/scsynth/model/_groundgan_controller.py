"""GRouNdGAN's construction helpers: the model's genes without data, the GRN, the causal controller's config."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .._constants import SCSYNTH_KEYS
from ..data._prepare_grn import PreparedGRN, prepare_grn
from ..data._validate import examples


class ControllerMixin:
    """How :class:`~scsynth.model.GRouNdGAN` reads its genes, prepares its GRN and configures its controller."""

    def _data_var_names(self) -> np.ndarray:
        if self.adata is not None:
            return np.asarray(self.adata.var_names, dtype=str)
        state = self.registry_["field_registries"][SCSYNTH_KEYS.X_KEY]["state_registry"]
        return np.asarray(state["column_names"], dtype=str)

    @staticmethod
    def _prepare(grn, data_genes: np.ndarray, *, missing: str | None, unregulated: str) -> PreparedGRN:
        if grn is None:
            raise ValueError(
                "GRouNdGAN needs a GRN: grn= a DataFrame with source/target columns, a TSV/CSV path, 'collectri', "
                "or scsynth.data.infer_grn(adata)."
            )
        if isinstance(grn, dict) and "edges" in grn:  # a stored PreparedGRN (load)
            return PreparedGRN.from_dict(grn)
        if missing is None:
            missing = "drop" if isinstance(grn, str) and grn == "collectri" else "raise"
        return prepare_grn(grn, data_genes, missing=missing, unregulated=unregulated)

    @staticmethod
    def _controller_config(controller, prepared: PreparedGRN, **defaults) -> dict[str, Any]:
        if controller is None:
            return {"var_names": list(prepared.genes), "n_latent": defaults["n_latent"],
                    "generator_hidden": list(defaults["controller_hidden"]), "pretrained": False}
        if isinstance(controller, dict):  # stored config (load)
            return dict(controller)
        from ._scgan import ScGAN

        if not isinstance(controller, ScGAN):
            raise TypeError(f"controller must be a trained scsynth.model.ScGAN, got {type(controller).__name__}.")
        if not controller.is_trained_:
            raise ValueError("The controller ScGAN is not trained; train it first or pass controller=None.")
        if controller.module.conditional:
            raise ValueError("The controller must be an unconditional ScGAN (set up without labels_key).")
        genes = set(controller.var_names_)
        absent = [g for g in prepared.tfs if g not in genes]
        if absent:
            raise ValueError(
                f"{len(absent)} TFs of the GRN are not genes of the controller ScGAN ({examples(absent)})."
            )
        module = controller.module
        ours = (defaults["critic_hidden"], defaults["critic_input"], defaults["library_size"])
        theirs = (tuple(l.out_features for l in module.critic_net.body if isinstance(l, torch.nn.Linear)),
                  module.critic_net.input_transform, module.normalize.library_size)
        if tuple(ours[0]) != theirs[0] or ours[1:] != theirs[1:]:
            raise ValueError(
                f"The controller ScGAN's critic/library size {theirs} differ from this model's {ours}; pass the "
                "same critic_hidden, critic_input and library_size."
            )
        return {"var_names": [str(g) for g in controller.var_names_], "n_latent": module.n_latent,
                "generator_hidden": [l.out_features for l in module.generator.linears], "pretrained": True,
                "steps": int(controller.n_generator_steps_), "state_dict": module.state_dict()}

    @staticmethod
    def _controller_gene_index(prepared: PreparedGRN, ctrl_pos: dict, target_noise: str) -> np.ndarray | None:
        """Positions of the model's genes among the controller's; ``None`` if it lacks some (independent noise only)."""
        absent = [g for g in prepared.genes if g not in ctrl_pos]
        if absent and target_noise == "controller":
            raise ValueError(
                f"target_noise='controller' takes whole cells from the controller, but {len(absent)} genes of the "
                f"model are not the controller ScGAN's ({examples(absent)})"
                "; train the ScGAN on every gene of the data, or use target_noise='independent'."
            )
        return None if absent else np.array([ctrl_pos[g] for g in prepared.genes], dtype=np.int64)
