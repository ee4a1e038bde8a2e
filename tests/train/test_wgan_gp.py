import lightning
import numpy as np
import pytest

import scsynth
from scsynth.train import HISTORY_KEYS, WGANGPTrainingPlan

from ..conftest import SMALL


class _Recorder(lightning.pytorch.Callback):
    def __init__(self):
        self.modes, self.gen_steps, self.lrs = [], [], []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.modes.append(pl_module.module.training)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.gen_steps.append(pl_module.generator_steps)
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


@pytest.mark.parametrize(("n_critic", "max_steps"), [(5, 4), (3, 7)])
def test_max_steps_counts_generator_steps_exactly(counts, n_critic, max_steps):
    scsynth.model.ScGAN.setup_anndata(counts)
    model = scsynth.model.ScGAN(counts, **SMALL)
    rec = _Recorder()
    model.train(max_steps=max_steps, batch_size=32, plan_kwargs={"n_critic": n_critic}, callbacks=[rec],
                enable_progress_bar=False)
    assert model.n_generator_steps_ == max_steps
    assert rec.gen_steps[-1] == max_steps
    assert len(rec.gen_steps) == n_critic * max_steps  # one critic step per batch
    assert model.history["generator_step"].iloc[-1, 0] == max_steps


def test_history_keys_lr_decay_and_train_mode_on_retrain(counts):
    scsynth.model.ScGAN.setup_anndata(counts)
    model = scsynth.model.ScGAN(counts, **SMALL)
    rec = _Recorder()
    model.train(max_steps=6, batch_size=32, validate_every=1, callbacks=[rec], enable_progress_bar=False,
                plan_kwargs={"lr": 1e-3, "lr_decay_to": 0.5})
    expected = set(HISTORY_KEYS)
    assert expected <= set(model.history)
    assert np.isfinite(model.history["wasserstein_validation"].to_numpy()).all()
    # exponential decay per generator step: after 6 of 6 steps the LR is lr * lr_decay_to
    assert rec.lrs[-1] == pytest.approx(1e-3 * 0.5, rel=1e-6)
    assert not model.module.training  # scvi puts the module in eval after training ...
    rec2 = _Recorder()
    model.train(max_steps=2, batch_size=32, callbacks=[rec2], enable_progress_bar=False)
    assert all(rec2.modes)  # ... and our plan puts it back in train mode for the next fit
    assert model.n_generator_steps_ == 8


def test_gradient_clipping_by_hand(counts):
    scsynth.model.ScGAN.setup_anndata(counts)
    model = scsynth.model.ScGAN(counts, **SMALL)
    model.train(max_steps=2, batch_size=32, plan_kwargs={"gradient_clip_val": 0.01}, enable_progress_bar=False)
    assert model.is_trained


def test_plan_rejects_bad_options(counts):
    scsynth.model.ScGAN.setup_anndata(counts)
    model = scsynth.model.ScGAN(counts, **SMALL)
    with pytest.raises(ValueError, match="n_critic"):
        WGANGPTrainingPlan(model.module, n_critic=0)
    with pytest.raises(ValueError, match="lr_decay_to"):
        WGANGPTrainingPlan(model.module, lr_decay_to=0)
    with pytest.raises(ValueError, match="max_steps"):
        model.train(max_steps=0, batch_size=32)


def test_scgan_default_learning_rate_and_override(counts):
    scsynth.model.ScGAN.setup_anndata(counts)
    model = scsynth.model.ScGAN(counts, **SMALL)
    rec = _Recorder()
    model.train(max_steps=2, batch_size=32, callbacks=[rec], enable_progress_bar=False, plan_kwargs={"lr_decay_to": 1})
    assert rec.lrs[-1] == pytest.approx(5e-4)  # ScGAN's default, constant here
    rec = _Recorder()
    model.train(max_steps=1, batch_size=32, callbacks=[rec], enable_progress_bar=False,
                plan_kwargs={"lr": 3e-4, "lr_decay_to": 1})
    assert rec.lrs[-1] == pytest.approx(3e-4)
