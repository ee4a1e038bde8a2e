"""RealismCheckpoint: checks on held-out cells, the best generator restored, history, save/load, seeds."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from scsynth.metrics import RealismScorer
from scsynth.model import ScGAN
from scsynth.train import GeneratorStepProgressBar, RealismCheckpoint, TrainingDivergedError
from scsynth.train._ema import generator_tensors

from ..conftest import SMALL
from .test_ema import Recorder, expected_ema


def _model(adata, labels_key=None):
    ScGAN.setup_anndata(adata, labels_key=labels_key)
    return ScGAN(adata, **SMALL)


def _scripted_scores(monkeypatch, scores):
    """Make the scorer return ``scores`` in turn (the first one is the control, scored at the start)."""
    queue = list(scores)
    monkeypatch.setattr(RealismScorer, "__call__", lambda self, generated: queue.pop(0))
    return queue


def test_no_validation_cells_raises_before_training(counts):
    model = _model(counts)
    with pytest.raises(ValueError, match="train_size"):
        model.train(max_steps=2, batch_size=32, train_size=1.0, monitor_realism=True, enable_progress_bar=False)
    assert not model.is_trained_
    with pytest.raises(ValueError, match="monitor_realism"):
        model.train(max_steps=2, batch_size=32, monitor_realism=-5, enable_progress_bar=False)


def test_best_check_is_restored_not_the_last_weights(counts, monkeypatch):
    model = _model(counts)
    # control, then checks at steps 2, 4, 6: step 4 is the best, the last one the worst
    queue = _scripted_scores(monkeypatch, [0.05, 0.5, 0.1, 0.9])
    rec = Recorder()
    model.train(max_steps=6, batch_size=32, train_size=0.8, monitor_realism=2, callbacks=[rec],
                enable_progress_bar=False)
    assert not queue
    got = [p.detach() for p in generator_tensors(model.module)[0]]
    assert all(torch.equal(g, w) for g, w in zip(got, rec.steps[3], strict=True))  # after generator step 4
    assert not all(torch.equal(g, w) for g, w in zip(got, rec.steps[5], strict=True))
    assert model.best_generator_step_ == 4 and model.n_generator_steps_ == 4
    best = model.realism_best_["train"]
    assert best == {"metric": "mmd", "generator_step": 4, "value": 0.1, "control": 0.05, "every": 2,
                    "restored": True}
    frame = model.histories_["train"]["realism_validation"]
    assert list(frame.columns) == ["realism_validation", "generator_step"]
    assert frame["realism_validation"].tolist() == [0.5, 0.1, 0.9]
    assert frame["generator_step"].tolist() == [2, 4, 6]


def test_unchecked_last_step_is_checked_and_ema_weights_are_kept(counts, monkeypatch):
    model = _model(counts, labels_key="group")
    # control, checks at steps 3 and 5 (the end, not a multiple of 3): the last one is the best
    _scripted_scores(monkeypatch, [0.05, 0.5, 0.2])
    rec = Recorder()
    model.train(max_steps=5, batch_size=32, train_size=0.8, monitor_realism=3, ema_decay=0.8, callbacks=[rec],
                enable_progress_bar=False)
    assert model.histories_["train"]["realism_validation"]["generator_step"].tolist() == [3, 5]
    assert model.best_generator_step_ == 5
    for got, want in zip(generator_tensors(model.module)[0], expected_ema(rec.start, rec.steps, 0.8), strict=True):
        torch.testing.assert_close(got.detach(), want)


def test_checks_are_reproducible_and_do_not_move_training(counts):
    runs = []
    for monitor in (2, 2, False):
        model = _model(counts.copy())
        rec = Recorder()
        model.train(max_steps=6, batch_size=32, train_size=0.8, monitor_realism=monitor, callbacks=[rec],
                    enable_progress_bar=False)
        runs.append((model, rec))
    (a, rec_a), (b, rec_b), (_, rec_off) = runs
    fa, fb = (m.histories_["train"]["realism_validation"] for m in (a, b))
    assert fa.equals(fb) and len(fa) == 3 and (fa["realism_validation"] > 0).all()
    assert a.realism_best_ == b.realism_best_ and np.isfinite(a.realism_best_["train"]["control"])
    for pa, pb in zip(a.module.state_dict().values(), b.module.state_dict().values(), strict=True):
        assert torch.equal(pa, pb)
    # the checks draw from a forked RNG: every training step's weights equal those of a run without them
    for step_a, step_off in zip(rec_a.steps, rec_off.steps, strict=True):
        assert all(torch.equal(x, y) for x, y in zip(step_a, step_off, strict=True))


def test_realism_survives_save_load_and_continued_training(counts, tmp_path):
    model = _model(counts)
    model.train(max_steps=4, batch_size=32, train_size=0.8, monitor_realism=2, realism_metric="rf_auroc",
                enable_progress_bar=False)
    frame = model.histories_["train"]["realism_validation"]
    assert frame["realism_validation"].between(0, 1).all()
    model.save(tmp_path / "m")
    loaded = ScGAN.load(tmp_path / "m", adata=counts)
    pd.testing.assert_frame_equal(loaded.histories_["train"]["realism_validation"], frame, check_dtype=False)
    assert loaded.best_generator_step_ == model.best_generator_step_
    assert loaded.realism_best_ == model.realism_best_
    loaded.train(max_steps=2, batch_size=32, train_size=0.8, monitor_realism=2, enable_progress_bar=False)
    both = loaded.histories_["train"]["realism_validation"]
    assert len(both) == len(frame) + 1 and both.index.is_unique  # the second run's epochs continue
    assert loaded.realism_best_["train"]["metric"] == "mmd"


def test_progress_bar_shows_the_latest_and_best_score():
    checkpoint = RealismCheckpoint({}, every=1)
    checkpoint.records = [(0, 1, 0.3), (0, 2, 0.25)]
    checkpoint.best_step, checkpoint.best_value = 2, 0.25
    bar = GeneratorStepProgressBar()
    trainer = SimpleNamespace(is_global_zero=True, progress_bar_metrics={}, callbacks=[checkpoint])
    bar.on_train_start(trainer, SimpleNamespace(planned_generator_steps=lambda: 5))
    bar.on_train_batch_end(trainer, SimpleNamespace(generator_steps=2), None, None, 0)
    assert bar._bar.postfix == "realism=0.25, best=0.25@2"
    bar.on_train_end(trainer, None)


def test_scorer_ranks_real_cells_above_distorted_ones():
    rng = np.random.default_rng(0)
    real = rng.poisson(rng.gamma(2.0, 1.0, 60), (300, 60)).astype(float)
    distorted = real[200:] * rng.uniform(0.2, 3.0, 60)
    for metric in ("mmd", "rf_auroc"):
        scorer = RealismScorer(real[:100], reference=real[100:200], metric=metric, n_components=10, seed=1)
        same, off = scorer(real[200:]), scorer(distorted)
        assert scorer.gap(same) < scorer.gap(off)
        assert scorer(real[200:]) == same  # deterministic
    with pytest.raises(ValueError, match="metric"):
        RealismScorer(real, metric="auroc")
    with pytest.raises(ValueError, match="10 real cells"):
        RealismScorer(real[:5])


def test_a_diverged_run_is_left_to_the_guard(counts):
    model = _model(counts)
    model.train(max_steps=2, batch_size=32, enable_progress_bar=False)
    before = {k: v.clone() for k, v in model.module.state_dict().items()}
    with pytest.raises(TrainingDivergedError):
        model.train(max_steps=6, batch_size=32, train_size=0.8, monitor_realism=1, ema_decay=0.9,
                    enable_progress_bar=False, plan_kwargs={"lr": 1e6})
    after = model.module.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # neither the average nor a check's copy
    assert model.n_generator_steps_ == 2
    assert not model.realism_best_.get("train", {}).get("restored", False)
