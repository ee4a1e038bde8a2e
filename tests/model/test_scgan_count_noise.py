import anndata
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from scsynth.model import ScGAN
from scsynth.train import CountNoiseWarmup

from ..conftest import DATA, SMALL, load_as_saved_before


def _train(adata, steps=3, labels_key=None, **options):
    ScGAN.setup_anndata(adata, labels_key=labels_key)
    model = ScGAN(adata, **SMALL, **options)
    model.train(max_steps=steps, batch_size=32, enable_progress_bar=False)
    return model


def test_default_draws_counts_after_a_warmup(counts):
    model = _train(counts.copy())
    assert model.output_noise == "poisson" and model.output_noise_warmup == 0.5
    assert model.module.count_noise.is_fitted and model.module.count_noise_in_training


def test_output_noise_none_keeps_the_generators_values(counts):
    model = _train(counts.copy(), output_noise="none")
    assert not model.module.count_noise.is_fitted and model._training_callbacks() == []
    module = model.module.eval()
    with torch.no_grad():
        z = module.draw_noise(16)
        torch.testing.assert_close(module.generative(16, None, z=z)["x_fake"], module.generator(z, None))


def test_poisson_output_fits_the_training_cells_units(counts):
    adata = counts.copy()
    model = _train(adata, output_noise="poisson")
    x = adata.X.toarray()[np.sort(model.train_indices)]  # the training cells only
    # one count of each training cell, normalised
    expected = model.module.normalize.library_size / x.sum(1)[x.sum(1) > 0]
    table = model.module.count_noise.units[0].numpy()
    np.testing.assert_allclose(table[[0, 50, 100]], np.quantile(expected, [0, 0.5, 1]), rtol=1e-4)


def test_poisson_output_per_label_in_training_and_generation(counts):
    adata = counts.copy()
    model = _train(adata, labels_key="group", output_noise="poisson")
    noise = model.module.count_noise
    assert noise.units.shape[0] == len(model.label_categories) and bool((noise.units[:, 0] > 0).all())
    # generation: the same seed gives the same cells; another seed other count draws
    a, b = model.generate(60, condition="LYZ+", seed=4), model.generate(60, condition="LYZ+", seed=4)
    assert (a.X != b.X).nnz == 0
    assert (a.X != model.generate(60, condition="LYZ+", seed=5).X).nnz > 0
    # the generator's own cells go through the draw: on the one-count lattice of some training cell
    module = model.module.eval()
    with torch.no_grad():
        mean = module.generator(module.draw_noise(64), torch.zeros(64, dtype=torch.long))
        fake = module.generative(64, torch.zeros(64, dtype=torch.long))["x_fake"]
    assert not torch.equal(mean, fake) and fake.min() >= 0
    smallest = torch.where(fake > 0, fake, torch.full_like(fake, np.inf)).min(1).values
    lo, hi = noise.units[0, 0], noise.units[0, -1]
    assert bool(((smallest >= lo * 0.999) & (smallest <= hi * 1.001) | torch.isinf(smallest)).all())


def test_poisson_output_round_trips_and_old_models_load_without_noise(counts, tmp_path):
    adata = counts.copy()
    model = _train(adata, output_noise="poisson")
    model.save(tmp_path / "m", save_anndata=False)
    loaded = ScGAN.load(tmp_path / "m", adata=adata.copy())
    assert loaded.output_noise == "poisson"
    assert torch.equal(loaded.module.count_noise.units, model.module.count_noise.units)
    assert (loaded.generate(40, seed=1).X != model.generate(40, seed=1).X).nnz == 0
    old = load_as_saved_before(_train(counts.copy(), output_noise="none"), tmp_path / "old", "output_noise",
                               counts)
    assert old.output_noise == "none" and not old.module.count_noise.is_fitted


def test_poisson_models_saved_before_latent_levels_load_with_independent_units(counts, tmp_path):
    from safetensors.torch import load_file, save_file

    adata = counts.copy()
    model = _train(adata, output_noise="poisson")
    assert bool(model.module.count_noise.latent_levels)
    model.save(tmp_path / "m", save_anndata=False)
    weights_file = tmp_path / "m" / "model.safetensors"
    weights = load_file(weights_file)
    assert weights.pop("count_noise.latent_levels")
    save_file(weights, weights_file)
    loaded = ScGAN.load(tmp_path / "m", adata=adata.copy())
    assert loaded.output_noise == "poisson" and not loaded.module.count_noise.latent_levels
    # as the model generated then: units drawn independently of the latent
    assert (loaded.generate(40, seed=1).X != model.generate(40, seed=1).X).nnz > 0
    model.module.count_noise.latent_levels.fill_(False)
    assert (loaded.generate(40, seed=1).X != model.generate(40, seed=1).X).nnz == 0


def test_output_noise_must_be_known(counts):
    adata = counts.copy()
    ScGAN.setup_anndata(adata)
    with pytest.raises(ValueError, match="output_noise must be 'none' or 'poisson'"):
        ScGAN(adata, output_noise="gaussian", **SMALL)


class _NoiseSwitch(Callback):
    """Whether a batch's training pass drew counts, keyed by the generator steps done when it started."""

    def __init__(self):
        self.seen, self.done = {}, 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.done = pl_module.generator_steps

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):  # after the warm-up's switch
        self.seen.setdefault(self.done, pl_module.module.count_noise_in_training)


@pytest.mark.parametrize(("warmup", "first_noisy"), [(0.5, 4), (0.25, 2), (0.0, 0)])
def test_warmup_trains_the_first_share_of_steps_without_the_draw(counts, warmup, first_noisy):
    adata = counts.copy()
    ScGAN.setup_anndata(adata)
    model = ScGAN(adata, **SMALL, output_noise="poisson", output_noise_warmup=warmup)
    switch = _NoiseSwitch()
    model.train(max_steps=8, batch_size=32, enable_progress_bar=False, callbacks=[switch])
    # steps 1..first_noisy without the draw, the rest with it
    assert [switch.seen[k] for k in range(8)] == [k >= first_noisy for k in range(8)]
    assert model.module.count_noise_in_training and model.output_noise_warmup == warmup
    # a second training of a trained model draws from its first step
    again = _NoiseSwitch()
    model.train(max_steps=4, batch_size=32, enable_progress_bar=False, callbacks=[again])
    assert all(again.seen.values())


def test_warmup_is_off_in_training_but_generation_still_draws(counts):
    adata = counts.copy()
    model = _train(adata, output_noise="poisson", output_noise_warmup=0.5)
    module = model.module.eval()
    drawn = model.generate(64, seed=0).X
    module.count_noise_in_training = False  # as during the warm-up
    z = module.draw_noise(64)
    with torch.no_grad():
        assert torch.equal(module.generative(64, z=z)["x_fake"], module.generator(z, None))
    assert (model.generate(64, seed=0).X != drawn).nnz == 0  # generation draws all the same
    module.count_noise.units.zero_()  # without the draw: other cells
    assert (model.generate(64, seed=0).X != drawn).nnz > 0


def test_warmup_saved_with_the_model_and_older_models_load_without_it(counts, tmp_path):
    adata = counts.copy()
    model = _train(adata, output_noise="poisson", output_noise_warmup=0.3)
    model.save(tmp_path / "m", save_anndata=False)
    assert ScGAN.load(tmp_path / "m", adata=adata.copy()).output_noise_warmup == 0.3
    old = load_as_saved_before(_train(counts.copy(), output_noise="poisson"), tmp_path / "old",
                               "output_noise_warmup", counts)
    assert old.output_noise_warmup == 0.0 and old.output_noise == "poisson"


@pytest.mark.parametrize("warmup", [1.0, -0.1, True, "half", float("nan")])
def test_warmup_must_be_a_fraction(counts, warmup):
    adata = counts.copy()
    ScGAN.setup_anndata(adata)
    with pytest.raises(ValueError, match=r"output_noise_warmup must be a fraction in \[0, 1\)"):
        ScGAN(adata, output_noise="poisson", output_noise_warmup=warmup, **SMALL)
    with pytest.raises(ValueError, match=r"count noise warm-up must be a fraction in \[0, 1\)"):
        CountNoiseWarmup(1.0)
    assert ScGAN(adata, output_noise_warmup=np.float32(0.25), **SMALL).output_noise_warmup == 0.25


def test_warmup_under_a_time_budget_ends_at_its_share_of_the_time():
    from lightning.pytorch.callbacks import Timer

    warmup, timer = CountNoiseWarmup(0.5), Timer(duration={"seconds": 100})
    warmup.first_noisy_step = 10**6  # max_steps far beyond what the time allows
    warmup._timer = timer
    elapsed = {"t": 0.0}
    timer.time_elapsed = lambda stage="train": elapsed["t"]
    assert warmup.warming_up(5)
    elapsed["t"] = 49.0
    assert warmup.warming_up(5)
    elapsed["t"] = 50.0
    assert not warmup.warming_up(5)
    warmup._timer = None  # no time budget: the steps alone decide
    assert warmup.warming_up(5) and not warmup.warming_up(10**6)


def test_a_time_budgeted_training_switches_the_draw_on():
    adata = anndata.read_h5ad(DATA / "immune_small_counts.h5ad")
    ScGAN.setup_anndata(adata)
    model = ScGAN(adata, **SMALL, output_noise="poisson")
    switch = _NoiseSwitch()
    model.train(max_steps=10**6, batch_size=32, enable_progress_bar=False, callbacks=[switch],
                max_time={"seconds": 4})
    flags = [switch.seen[k] for k in sorted(switch.seen)]
    assert 0 < model.n_generator_steps_ < 10**6
    assert not flags[0] and flags[-1] and flags == sorted(flags)  # off, then on for good
