"""GeneSys' realism checks (TrajectoryRealismCheckpoint): cells at the validation cells' steps, best weights kept."""

import numpy as np
import pandas as pd
import pytest
import torch
from scvi.distributions import NegativeBinomial

import scsynth
from scsynth.metrics import RealismScorer
from scsynth.model import GeneSys
from scsynth.module import GeneSysModule
from scsynth.train import TrajectoryRealismCheckpoint

from ..conftest import BRANCHING_BLUEPRINT, SMALL_GS, branching_counts


class WeightRecorder(scsynth.train.BestStateTracker):
    """The module's weights after every training step."""

    def __init__(self):
        super().__init__("train_loss")
        self.steps = []

    def on_train_batch_end(self, trainer, plan, outputs, batch, batch_idx):
        self.steps.append({k: v.detach().clone() for k, v in plan.module.state_dict().items()})


def _model(adata=None):
    adata = branching_counts() if adata is None else adata
    GeneSys.setup_anndata(adata)
    return GeneSys(adata, blueprint=BRANCHING_BLUEPRINT, **SMALL_GS)


def test_generated_cells_sit_at_the_validation_cells_steps():
    torch.manual_seed(0)
    module = GeneSysModule(6, 2, 3, n_latent=2, n_hidden=8)
    rows, times = np.array([0, 1, 1, 0]), np.array([0, 2, 1, 2])
    real = np.random.default_rng(0).poisson(5.0, (12, 6)).astype(np.float32)
    check = TrajectoryRealismCheckpoint(real[:4], rows, times, reference=real[4:], counts=True, seed=3)
    fake = check.generate(module)
    assert module.training  # generate() decodes in eval mode and leaves the mode as it found it
    assert fake.shape == (4, 6) and (fake >= 0).all() and np.array_equal(fake, np.round(fake))
    assert np.array_equal(check.generate(module), fake)  # seeded: every check sees the same noise
    # cell i: the state at step times[i] of a trajectory of row rows[i], decoded with the cell's own total
    module.eval()
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(3)
        z = module.rollout(torch.as_tensor(rows))[np.arange(4), times]
        params = module.decode(z, torch.as_tensor(real[:4].sum(1)))
        want = NegativeBinomial(mu=params["rate"], theta=params["theta"]).sample().numpy()
    np.testing.assert_array_equal(fake, want)
    with pytest.raises(ValueError, match="same length"):
        TrajectoryRealismCheckpoint(real[:4], rows[:3], times)


def test_bad_options_raise_before_training():
    model = _model()
    with pytest.raises(ValueError, match="max_cycles=1"):
        model.train(max_epochs=2, batch_size=16, monitor_realism=True, max_cycles=2, enable_progress_bar=False)
    with pytest.raises(ValueError, match="train_size"):
        model.train(max_epochs=2, batch_size=16, train_size=1.0, monitor_realism=True, enable_progress_bar=False)
    with pytest.raises(ValueError, match="monitor_realism"):
        model.train(max_epochs=2, batch_size=16, monitor_realism=-3, enable_progress_bar=False)
    with pytest.raises(ValueError, match="metric"):
        model.train(max_epochs=2, batch_size=16, monitor_realism=2, realism_metric="auroc", enable_progress_bar=False)
    assert not model.is_trained_


def test_best_check_is_restored_and_filed(monkeypatch, tmp_path):
    model = _model()
    # the control, then checks every 4 steps (8 batches per epoch at batch 16, 3 epochs = 24 steps): step 8 is best
    scores = [0.05, 0.5, 0.1, 0.9, 0.7, 0.8, 0.95]
    queue = list(scores)
    monkeypatch.setattr(RealismScorer, "__call__", lambda self, generated: queue.pop(0))
    rec = WeightRecorder()
    model.train(max_epochs=3, batch_size=16, seed=0, monitor_realism=4, callbacks=[rec], enable_progress_bar=False)
    assert not queue and len(rec.steps) == 24
    for name, value in model.module.state_dict().items():
        assert torch.equal(value, rec.steps[7][name]), name  # after step 8, not the last or the best-loss epoch
    assert model.realism_best_["train"] == {"metric": "mmd", "generator_step": 8, "value": 0.1, "control": 0.05,
                                            "every": 4, "restored": True}
    frame = model.histories_["train"]["realism_validation"]
    assert frame["generator_step"].tolist() == [4, 8, 12, 16, 20, 24]
    model.save(tmp_path / "m")
    loaded = GeneSys.load(tmp_path / "m")
    assert loaded.realism_best_ == model.realism_best_
    pd.testing.assert_frame_equal(loaded.histories_["train"]["realism_validation"], frame, check_dtype=False)
    assert scsynth.pl.realism_curve(loaded, show=False) is not None


def test_checks_are_real_reproducible_and_do_not_move_training():
    runs = []
    for monitor in (4, 4, False):
        model = _model()
        rec = WeightRecorder()
        model.train(max_epochs=2, batch_size=16, seed=0, monitor_realism=monitor, callbacks=[rec],
                    enable_progress_bar=False)
        runs.append((model, rec))
    (a, rec_a), (b, _), (_, rec_off) = runs
    fa, fb = (m.histories_["train"]["realism_validation"] for m in (a, b))
    assert fa.equals(fb) and len(fa) == 4 and (fa["realism_validation"] > 0).all()
    assert np.isfinite(a.realism_best_["train"]["control"])
    for step_a, step_off in zip(rec_a.steps, rec_off.steps, strict=True):  # the checks draw from a forked RNG
        assert all(torch.equal(step_a[k], step_off[k]) for k in step_a)
