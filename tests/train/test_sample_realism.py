"""RNAGAN's realism checks (SampleRealismCheckpoint): pseudo-samples of held-out samples' groups, best weights kept."""

import numpy as np
import pandas as pd
import pytest
import torch

import scsynth
from scsynth.metrics import RealismScorer
from scsynth.model import RNAGAN
from scsynth.module import RNAGANNetworks
from scsynth.nn import PathwayLinear
from scsynth.train import SampleRealismCheckpoint

from ..conftest import GENE_SETS, SMALL_RG, rnagan_samples
from .test_trajectory_realism import WeightRecorder  # the module's weights after every batch (of every stage)


def _model(train_size=0.8):
    adata = rnagan_samples()
    RNAGAN.setup_anndata(adata, labels_key="group")
    return RNAGAN(adata, gene_sets=GENE_SETS, **SMALL_RG)


def _train(model, **kwargs):
    # 50 warm-up + 50 adversarial batches (one history row each), a generator step per adversarial batch
    model.train(max_steps={"sc": 100}, batch_size=16, n_refs=(3, 6), seed=0, enable_progress_bar=False, **kwargs)


def test_generated_samples_come_from_the_fixed_reference_sets():
    torch.manual_seed(0)
    pathways = PathwayLinear(np.array([0, 0, 1]), np.array([0, 1, 2]), n_genes=6, n_sets=2)
    module = RNAGANNetworks(pathways, hidden=(8, 4), n_latent=2, n_noise=2)
    torch.nn.init.normal_(module.generator.fold_change.weight)  # not the reference mean of an untrained one
    rng = np.random.default_rng(0)
    real = np.log1p(rng.poisson(20.0, (30, 6))).astype(np.float32)
    sets = rng.integers(0, 8, (12, 3))
    check = SampleRealismCheckpoint(real[:12], real[12:20], sets, reference=real[20:], seed=3)
    fake = check.generate(module)
    assert module.training  # generated in eval mode, the mode left as found
    assert fake.shape == (12, 6) and (fake >= 0).all()
    np.testing.assert_array_equal(check.generate(module), fake)  # seeded: every check sees the same noise
    module.eval()
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(3)
        want = torch.expm1(module.generative(torch.as_tensor(real[12:20])[sets])["x_fake"]).clamp_min(0)
    np.testing.assert_allclose(fake, want.numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="sets"):
        SampleRealismCheckpoint(real[:12], real[12:20], sets[:5])
    with pytest.raises(ValueError, match="sets"):
        SampleRealismCheckpoint(real[:12], real[12:20], sets + 8)  # rows past the pool
    with pytest.raises(ValueError, match="pool"):
        SampleRealismCheckpoint(real[:12], real[12:20, :4], sets)


def test_bad_options_raise_before_training():
    model = _model()
    with pytest.raises(ValueError, match="train_size"):
        _train(model, monitor_realism=True)  # train_size=1: nothing held out
    with pytest.raises(ValueError, match=r"train_size=0.8.*at least 10 of the 120"):
        _train(model, train_size=0.95, monitor_realism=True)  # 4 held out
    for bad in (0.0, 1.5, True, "0.8"):
        with pytest.raises(ValueError, match="train_size"):
            _train(model, train_size=bad)
    with pytest.raises(ValueError, match="monitor_realism"):
        _train(model, train_size=0.8, monitor_realism=-3)
    with pytest.raises(ValueError, match="metric"):
        _train(model, train_size=0.8, monitor_realism=10, realism_metric="auroc")
    assert not model.is_trained_ and not model.steps_


def test_best_check_is_restored_and_filed(monkeypatch, tmp_path):
    model = _model()
    # the control, then checks at generator steps 10, 20, ..., 50: step 20 is the best
    queue = [0.05, 0.5, 0.1, 0.9, 0.7, 0.8]
    monkeypatch.setattr(RealismScorer, "__call__", lambda self, generated: queue.pop(0))
    rec = WeightRecorder()
    _train(model, train_size=0.8, monitor_realism=10, callbacks=[rec])
    assert not queue and len(rec.steps) == 100
    for name, value in model.module.state_dict().items():  # after adversarial batch 20, not the best-accuracy row
        if not name.startswith("marginals."):  # the calibration is fitted after training, to the restored weights
            assert torch.equal(value, rec.steps[50 + 19][name]), name
    assert model.realism_best_ == {"sc": {"metric": "mmd", "generator_step": 20, "value": 0.1, "control": 0.05,
                                          "every": 10, "restored": True}}
    assert model.best_epochs_["sc"] == 0 and model.episode_accuracy_["sc"] == pytest.approx(
        model.histories_["sc"]["episode_accuracy_train"].iloc[0, 0])
    frame = model.histories_["sc"]["realism_validation"]
    assert frame["generator_step"].tolist() == [10, 20, 30, 40, 50]
    assert "realism_validation" not in model.histories_["sc_warmup"]  # no generator to check in the warm-up
    # 6 of each group's 30 samples held out, out of the episodes and the reference sets
    held = set(model.held_out_)
    assert len(held) == 24 and all(len(v) == 24 for v in model.train_libraries_["sc"].values())
    assert pd.Series(model.adata.obs.loc[list(held), "group"]).value_counts().eq(6).all()
    model.save(tmp_path / "m")
    loaded = RNAGAN.load(tmp_path / "m")
    assert loaded.realism_best_ == model.realism_best_ and loaded.held_out_ == model.held_out_
    pd.testing.assert_frame_equal(loaded.histories_["sc"]["realism_validation"], frame, check_dtype=False)
    assert scsynth.pl.realism_curve(loaded, show=False) is not None


def test_checks_are_real_reproducible_and_do_not_move_training():
    runs = []
    for monitor in (25, 25, False):
        model = _model()
        rec = WeightRecorder()
        _train(model, train_size=0.8, monitor_realism=monitor, callbacks=[rec])
        runs.append((model, rec))
    (a, rec_a), (b, _), (off, rec_off) = runs
    fa, fb = (m.histories_["sc"]["realism_validation"] for m in (a, b))
    assert fa.equals(fb) and fa["generator_step"].tolist() == [25, 50] and (fa["realism_validation"] > 0).all()
    assert np.isfinite(a.realism_best_["sc"]["control"]) and not off.realism_best_
    assert off.held_out_ == a.held_out_  # the split is the seed's, monitored or not
    for step_a, step_off in zip(rec_a.steps, rec_off.steps, strict=True):  # the checks draw from a forked RNG
        assert all(torch.equal(step_a[k], step_off[k]) for k in step_a)
