"""GeneratorEMA: the average's maths, where its weights end up (generator, save/load, next train()), GRouNdGAN."""

import lightning
import pytest
import torch

from scsynth.model import GRouNdGAN, ScGAN
from scsynth.module import ScGANModule
from scsynth.train import GeneratorEMA
from scsynth.train._ema import ema_decay_at, generator_tensors

from ..conftest import SMALL, SMALL_GG


class Recorder(lightning.Callback):
    """The generator's weights at the start of training and after every generator step (user callbacks run first)."""

    def __init__(self):
        self.start, self.steps, self.buffers, self._seen = None, [], [], 0

    def _copy(self, module):
        params, buffers = generator_tensors(module)
        return [p.detach().clone() for p in params], [b.detach().clone() for b in buffers]

    def on_train_start(self, trainer, plan):
        self.start, _ = self._copy(plan.module)
        self._seen = plan.generator_steps

    def on_train_batch_end(self, trainer, plan, outputs, batch, batch_idx):
        if plan.generator_steps > self._seen:
            params, buffers = self._copy(plan.module)
            self.steps.append(params)
            self.buffers = buffers
        self._seen = plan.generator_steps


def expected_ema(start, steps, decay):
    shadow = [p.clone() for p in start]
    for t, weights in enumerate(steps):
        d = min(decay, (1 + t) / (10 + t))
        shadow = [d * s + (1 - d) * w for s, w in zip(shadow, weights, strict=True)]
    return shadow


def test_warm_up_decay():
    assert ema_decay_at(0.999, 0) == pytest.approx(0.1)
    assert ema_decay_at(0.999, 10) == pytest.approx(11 / 20)
    assert ema_decay_at(0.5, 100) == 0.5


def test_update_follows_the_formula_and_buffers_are_not_averaged():
    module = ScGANModule(12, n_latent=4, generator_hidden=(8,), critic_hidden=(8,))
    params, buffers = generator_tensors(module)
    assert {id(b) for b in buffers} == {id(b) for b in module.generator.buffers()}  # BatchNorm stats, no critic
    ema = GeneratorEMA(0.9)
    ema.start(module)
    w0 = [p.detach().clone() for p in params]
    history = []
    for k in range(1, 4):
        with torch.no_grad():
            for p in params:
                p.fill_(float(k))
        history.append([p.detach().clone() for p in params])
        ema.update(module)
    for got, want in zip(ema.shadow, expected_ema(w0, history, 0.9), strict=True):
        torch.testing.assert_close(got, want)
    # d_0 = 0.1, d_1 = 2/11, d_2 = 3/12: a constant-3 weight starting at w0 ends where the formula says
    first = w0[0]
    by_hand = 0.25 * (2 / 11 * (0.1 * first + 0.9 * 1) + 9 / 11 * 2) + 0.75 * 3
    torch.testing.assert_close(ema.shadow[0], by_hand)
    running_mean = module.generator.norms[0].running_mean.clone()
    with ema.applied(module):
        torch.testing.assert_close(params[0].detach(), ema.shadow[0])
        assert torch.equal(module.generator.norms[0].running_mean, running_mean)
    assert (params[0] == 3).all()  # the generator's own weights come back after the block
    ema.finish(module)
    torch.testing.assert_close(params[0].detach(), ema.shadow[0])


@pytest.mark.parametrize("labels_key", [None, "group"], ids=["scgan", "cscgan"])
def test_trained_generator_holds_the_average_and_it_survives_save_load(counts, tmp_path, labels_key):
    ScGAN.setup_anndata(counts, labels_key=labels_key)
    model = ScGAN(counts, **SMALL)
    rec = Recorder()
    model.train(max_steps=6, batch_size=32, ema_decay=0.8, callbacks=[rec], enable_progress_bar=False)
    assert len(rec.steps) == 6
    params, buffers = generator_tensors(model.module)
    want = expected_ema(rec.start, rec.steps, 0.8)
    for got, exp in zip(params, want, strict=True):
        torch.testing.assert_close(got.detach(), exp)
    assert not all(torch.equal(p.detach(), last) for p, last in zip(params, rec.steps[-1], strict=True))
    for got, live in zip(buffers, rec.buffers, strict=True):  # BatchNorm statistics: the live ones, copied
        assert torch.equal(got, live)
    model.save(tmp_path / "m")
    loaded = ScGAN.load(tmp_path / "m", adata=counts)
    for got, exp in zip(generator_tensors(loaded.module)[0], want, strict=True):
        torch.testing.assert_close(got.detach(), exp)
    assert loaded.generate(20, seed=1).X.shape == (20, counts.n_vars)
    # continuing training starts from the averaged weights
    rec2 = Recorder()
    loaded.train(max_steps=2, batch_size=32, ema_decay=0.8, callbacks=[rec2], enable_progress_bar=False)
    for start, exp in zip(rec2.start, want, strict=True):
        torch.testing.assert_close(start, exp)


def test_without_ema_the_generator_keeps_its_last_weights(counts):
    ScGAN.setup_anndata(counts)
    model = ScGAN(counts, **SMALL)
    rec = Recorder()
    model.train(max_steps=3, batch_size=32, ema_decay=None, callbacks=[rec], enable_progress_bar=False)
    for got, last in zip(generator_tensors(model.module)[0], rec.steps[-1], strict=True):
        assert torch.equal(got.detach(), last)


def test_bad_decay_raises_before_training(counts):
    ScGAN.setup_anndata(counts)
    model = ScGAN(counts, **SMALL)
    for bad in (1.0, 1.5, -0.1, "0.9"):
        with pytest.raises(ValueError, match="ema_decay"):
            model.train(max_steps=2, batch_size=32, ema_decay=bad, enable_progress_bar=False)
    assert not model.is_trained_


def test_groundgan_trains_both_stages_with_ema_and_monitoring(_pbmc, pbmc_grn):
    adata = _pbmc.copy()
    GRouNdGAN.setup_anndata(adata, is_count_data=False)
    model = GRouNdGAN(adata, grn=pbmc_grn, **SMALL_GG)
    model.module.stage = 2
    params, buffers = generator_tensors(model.module)
    assert {id(p) for p in params} == {id(p) for p in model.module.target_generators.parameters()}
    assert buffers and {id(b) for b in buffers} <= {id(b) for b in model.module.target_generators.buffers()}
    rec = Recorder()
    model.train(controller_steps=3, max_steps=4, batch_size=32, ema_decay=0.8, monitor_realism=2,
                callbacks=[rec], enable_progress_bar=False)
    assert model.controller_steps_ == 3
    for stage in ("controller", "generator"):
        assert "realism_validation" in model.histories_[stage]
        assert stage in model.realism_best_
    # the stage-2 generator is the average or the best check's average, never untouched start weights
    got = generator_tensors(model.module)[0]
    assert not all(torch.equal(g.detach(), s) for g, s in zip(got, rec.start, strict=True))
    assert model.generate(10, seed=0).n_obs == 10
