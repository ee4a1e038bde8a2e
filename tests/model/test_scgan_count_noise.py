import numpy as np
import pytest
import torch

from scsynth.model import ScGAN

from ..conftest import SMALL, load_as_saved_before


def _train(adata, steps=3, labels_key=None, **options):
    ScGAN.setup_anndata(adata, labels_key=labels_key)
    model = ScGAN(adata, **SMALL, **options)
    model.train(max_steps=steps, batch_size=32, enable_progress_bar=False)
    return model


def test_default_has_no_count_noise(counts):
    model = _train(counts.copy())
    assert model.output_noise == "none" and not model.module.count_noise.is_fitted


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
    old = load_as_saved_before(_train(counts.copy()), tmp_path / "old", "output_noise", counts)
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
