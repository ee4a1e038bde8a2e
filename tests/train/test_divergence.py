"""Divergence: a non-finite loss or weight stops training with a clear error and keeps the last finite weights."""

from __future__ import annotations

import anndata
import lightning
import numpy as np
import pytest
import torch

import scsynth
from scsynth.train import DivergenceGuard, TrainingDivergedError
from scsynth.train._divergence import is_invalid_distribution_parameter

from ..conftest import (
    BRANCHING_BLUEPRINT,
    DATA,
    GENE_SETS,
    SMALL,
    SMALL_GG,
    SMALL_GS,
    SMALL_RG,
    branching_counts,
    rnagan_samples,
)


# -- the mechanism -----------------------------------------------------------------------------------
class _Toy(lightning.LightningModule):
    """A linear model on SGD whose loss (or a weight) goes non-finite at a chosen step."""

    def __init__(self, bad_step: int, *, bad: str = "loss") -> None:
        super().__init__()
        self.module = torch.nn.Linear(3, 1)
        self.bad_step, self.bad, self.step_count = bad_step, bad, 0
        self.weights_after: dict[int, torch.Tensor] = {0: self.module.weight.detach().clone()}

    def training_step(self, batch, batch_idx):
        self.step_count += 1
        loss = self.module(batch[0]).pow(2).mean()
        if self.bad == "loss" and self.step_count == self.bad_step:
            loss = loss * float("inf")
        if self.bad == "weight" and self.step_count == self.bad_step:  # a finite loss, a NaN weight after the step
            with torch.no_grad():
                self.module.bias.fill_(float("nan"))
        return {"loss": loss}

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        self.weights_after[self.step_count] = self.module.weight.detach().clone()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        x = torch.randn(40, 3, generator=torch.Generator().manual_seed(0))
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x), batch_size=4)


def _fit(toy: _Toy, guard: DivergenceGuard) -> None:
    trainer = lightning.Trainer(max_epochs=3, callbacks=[guard], accelerator="cpu", logger=False,
                                enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(toy)


def test_guard_restores_the_trusted_snapshot_and_stops():
    toy = _Toy(bad_step=13)
    guard = DivergenceGuard("Toy", "stage A", hint="Lower the learning rate.", snapshot_every=4)
    _fit(toy, guard)
    assert toy.step_count == 13  # stopped right after the bad step (3 epochs x 10 batches planned)
    # copies at steps 4, 8, 12; the one of step 8 is trusted (4 finite steps followed it), not the one of 12
    assert guard.diverged and guard.kept_step == 8
    assert torch.equal(toy.module.weight.detach(), toy.weights_after[8])
    err = guard.error
    assert (err.model, err.stage, err.step, err.epoch, err.what, err.value, err.kept_step) == (
        "Toy", "stage A", 13, 2, "loss", float("inf"), 8)
    with pytest.raises(TrainingDivergedError, match=r"Toy training \(stage A\) diverged at step 13 \(epoch 2\): "
                                                    r"loss became inf.*after step 8.*Lower the learning rate"):
        guard.raise_if_diverged()


def test_guard_catches_a_non_finite_weight_and_trusts_the_start():
    toy = _Toy(bad_step=3, bad="weight")
    guard = DivergenceGuard("Toy", snapshot_every=50)
    _fit(toy, guard)
    assert guard.kept_step == 0 and torch.equal(toy.module.weight.detach(), toy.weights_after[0])
    assert all(torch.isfinite(p).all() for p in toy.module.parameters())
    with pytest.raises(RuntimeError, match=r"diverged at step 3 .*weight bias became nan.*start of this run"):
        guard.raise_if_diverged()


def test_guard_is_silent_when_training_stays_finite():
    toy = _Toy(bad_step=-1)
    guard = DivergenceGuard("Toy", snapshot_every=4)
    _fit(toy, guard)
    assert not guard.diverged and toy.step_count == 30 and guard.kept_generator_steps(7) == 7
    guard.raise_if_diverged()
    with pytest.raises(ValueError, match="snapshot_every"):
        DivergenceGuard("Toy", snapshot_every=0)


def test_distribution_errors_from_nan_parameters_are_recognised():
    with pytest.raises(ValueError) as info:
        torch.distributions.Normal(torch.tensor([float("nan")]), torch.ones(1), validate_args=True)
    assert is_invalid_distribution_parameter(info.value)
    assert not is_invalid_distribution_parameter(ValueError("something else"))


# -- the four models -----------------------------------------------------------------------------------
def _state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.module.state_dict().items()}


def _assert_kept(model, before: dict[str, torch.Tensor]) -> None:
    after = model.module.state_dict()
    assert all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())
    assert all(torch.equal(before[k], after[k]) for k in before)  # the weights from before the diverged run


def _finite_x(adata: anndata.AnnData) -> bool:
    x = adata.X.toarray() if hasattr(adata.X, "toarray") else np.asarray(adata.X)
    return bool(np.isfinite(x).all())


def _counts() -> anndata.AnnData:
    adata = anndata.read_h5ad(DATA / "immune_small_counts.h5ad")
    scsynth.model.ScGAN.setup_anndata(adata)
    return adata


def test_scgan_divergence_keeps_the_trained_weights():
    model = scsynth.model.ScGAN(_counts(), **SMALL)
    model.train(max_steps=2, batch_size=32, enable_progress_bar=False)
    before, steps = _state(model), model.n_generator_steps_
    with pytest.raises(TrainingDivergedError, match=r"ScGAN training diverged at step \d+ .*critic_loss became "
                                                    r"(nan|inf).*Lower the learning rate.*plan_kwargs=\{'lr'"):
        model.train(max_steps=5, batch_size=32, enable_progress_bar=False, plan_kwargs={"lr": 1e6})
    _assert_kept(model, before)
    assert model.is_trained_ and model.n_generator_steps_ == steps
    assert _finite_x(model.generate(20, seed=0))


def test_untrained_scgan_stays_untrained_after_divergence():
    model = scsynth.model.ScGAN(_counts(), **SMALL)
    with pytest.raises(TrainingDivergedError) as info:
        model.train(max_steps=5, batch_size=32, enable_progress_bar=False, plan_kwargs={"lr": 1e6})
    assert info.value.kept_step == 0 and not model.is_trained_ and model.n_generator_steps_ == 0
    assert all(torch.isfinite(p).all() for p in model.module.parameters())
    with pytest.raises(RuntimeError, match="not trained yet"):
        model.generate(5)


@pytest.fixture(scope="module")
def _groundgan_data():
    adata = scsynth.data.pbmc68k_normalized()
    from ..conftest import correlation_grn

    scsynth.model.GRouNdGAN.setup_anndata(adata, is_count_data=False)
    return adata, correlation_grn(adata)


def test_groundgan_divergence_names_the_stage(_groundgan_data):
    adata, grn = _groundgan_data
    model = scsynth.model.GRouNdGAN(adata, grn=grn, **SMALL_GG)
    with pytest.raises(TrainingDivergedError, match=r"stage 1, causal controller\) diverged at step \d+.*"
                                                    r"controller_plan_kwargs=\{'lr'"):
        model.train(controller_steps=3, max_steps=3, batch_size=32, enable_progress_bar=False,
                    controller_plan_kwargs={"lr": 1e6})
    assert model.controller_steps_ == 0 and model.n_generator_steps_ == 0 and not model.is_trained_
    model.train(controller_steps=2, max_steps=2, batch_size=32, enable_progress_bar=False)
    before = _state(model)
    with pytest.raises(TrainingDivergedError, match=r"stage 2, target generators\) diverged at step \d+ .*"
                                                    r"Lower the learning rate.*plan_kwargs=\{'lr'"):
        model.train(controller_steps=0, max_steps=3, batch_size=32, enable_progress_bar=False, plan_kwargs={"lr": 1e6})
    _assert_kept(model, before)
    assert model.is_trained_ and (model.controller_steps_, model.n_generator_steps_) == (2, 2)
    assert _finite_x(model.generate(20, seed=0))


def test_genesys_divergence_keeps_the_trained_weights():
    adata = branching_counts()
    scsynth.model.GeneSys.setup_anndata(adata)
    model = scsynth.model.GeneSys(adata, blueprint=BRANCHING_BLUEPRINT, **SMALL_GS)
    model.train(max_epochs=1, batch_size=16, seed=0, enable_progress_bar=False)
    before = _state(model)
    with pytest.raises(TrainingDivergedError, match=r"GeneSys training diverged at step \d+ \(epoch 1\): loss "
                                                    r"became nan.*Lower the learning rate, e.g. train\(lr="):
        model.train(max_epochs=3, batch_size=16, seed=0, lr=1e6, enable_progress_bar=False)
    _assert_kept(model, before)
    assert model.is_trained_
    assert _finite_x(model.generate(3, seed=0))


def test_genesys_nan_distribution_parameters_are_a_divergence():
    adata = branching_counts()
    scsynth.model.GeneSys.setup_anndata(adata)
    model = scsynth.model.GeneSys(adata, blueprint=BRANCHING_BLUEPRINT, **SMALL_GS)
    with torch.no_grad():  # finite weights whose forward pass overflows, so torch.distributions sees NaN
        for p in model.module.parameters():
            p.mul_(1e15)
    with pytest.raises(TrainingDivergedError, match=r"GeneSys training diverged at step 1 \(epoch 1\): loss became nan"):
        model.train(max_epochs=2, batch_size=16, seed=0, enable_progress_bar=False)
    assert not model.is_trained_


def test_rnagan_divergence_names_the_stage():
    adata = rnagan_samples()
    scsynth.model.RNAGAN.setup_anndata(adata, labels_key="group")
    model = scsynth.model.RNAGAN(adata, gene_sets=GENE_SETS, **SMALL_RG)
    model.train(max_steps={"sc": 4}, batch_size=32, n_refs=(3, 10), seed=0, enable_progress_bar=False)
    before, steps = _state(model), dict(model.steps_)
    with pytest.raises(TrainingDivergedError, match=r"RNAGAN training \(stage sc_warmup\) diverged at step \d+ .*"
                                                    r"Lower the learning rates.*lr_discriminator"):
        model.train(max_steps={"sc": 20}, batch_size=32, n_refs=(3, 10), seed=0, enable_progress_bar=False,
                    plan_kwargs={"lr_discriminator": 1e20, "lr_generator": 1e20})
    _assert_kept(model, before)
    assert model.is_trained_ and model.steps_ == steps
    assert _finite_x(model.generate(10, condition="type 0", seed=0))


def test_generation_never_returns_nan_cells(trained_conditional):
    """The last line of defence: weights made non-finite behind the guard's back give an error, not NaN."""
    model = trained_conditional
    state = {k: v.clone() for k, v in model.module.state_dict().items()}
    try:
        with torch.no_grad():
            for p in model.module.parameters():
                p.fill_(float("nan"))
        with pytest.raises(RuntimeError, match=r"generated \d+ NaN or infinite values.*lower learning rate"):
            model.generate(10, seed=0)
    finally:
        model.module.load_state_dict(state)
    assert np.isfinite(model.generate(10, seed=0).X.toarray()).all()
