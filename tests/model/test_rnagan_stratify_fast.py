"""RNAGAN's shared reference tables and factorised first layer compute what the per-episode path computes."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from scsynth.model import _rnagan_stratify
from scsynth.model._rnagan_stratify import shared_draws


def _logits(model, target_x, own, factorised, seed=0, n_draws=6, n_refs=4):
    ref_x = model._network_input(model.adata, dense=False)
    labels = model.adata.obs[model.labels_key].astype(str).to_numpy()
    names = sorted(set(labels))
    rng = np.random.default_rng(seed)
    return model._group_logits(target_x, own, ref_x, labels, names, n_draws, n_refs, rng, 64,
                               factorised=factorised)


@pytest.mark.parametrize("own_rows", [False, True])
def test_factorised_logits_equal_the_per_episode_discriminator(trained_rnagan, own_rows):
    model, test = trained_rnagan
    if own_rows:  # the training samples themselves: every set must leave the target's own row out
        target_x, own = model._network_input(model.adata), np.arange(model.adata.n_obs)
    else:
        target_x, own = model._network_input(test), np.full(test.n_obs, -1)
    fast = _logits(model, target_x, own, True)
    plain = _logits(model, target_x, own, False)
    np.testing.assert_allclose(fast, plain, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(fast, _logits(model, target_x, own, True))  # same seed, same result


def test_small_pair_chunks_change_nothing(trained_rnagan, monkeypatch):
    model, test = trained_rnagan
    target_x, own = model._network_input(test), np.full(test.n_obs, -1)
    whole = _logits(model, target_x, own, True)
    monkeypatch.setattr(_rnagan_stratify, "PAIR_CHUNK", 100)  # a few targets per chunk
    np.testing.assert_allclose(_logits(model, target_x, own, True), whole, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("references", [None, "known"])
def test_stratify_probabilities_equal_the_per_episode_path(trained_rnagan, references):
    model, test = trained_rnagan
    frames, temps = [], []
    for factorised in (True, False):
        data = (model.adata if references is None else test).copy()
        if references == "known":  # half labelled: the labelled ones are scored with their own row left out
            labels = data.obs["group"].astype(object).copy()
            labels.iloc[::2] = None
            data.obs["known"] = labels
        model._factorised = factorised
        try:
            frame = model.stratify(model.adata if references is None else data, references=references,
                                   n_draws=5, n_refs=3, seed=1)
        finally:
            del model._factorised
        frames.append(frame.to_numpy())
        temps.append((model.adata if references is None else data).uns["rnagan"]["params"]["temperature"])
    # same function, other float32 summation order: probabilities agree to float32 rounding (2.7e-6 seen on AMD EPYC)
    np.testing.assert_allclose(frames[0], frames[1], rtol=1e-4, atol=1e-5)
    assert temps[0] == pytest.approx(temps[1], rel=1e-4)


def test_embedding_equals_the_per_episode_path_and_is_reproducible(trained_rnagan):
    model, test = trained_rnagan
    fast = model.get_latent_representation(test, seed=3)
    model._factorised = False
    try:
        plain = model.get_latent_representation(test, seed=3)
    finally:
        del model._factorised
    assert fast.shape == (test.n_obs, model.module.discriminator.n_embedding)
    np.testing.assert_allclose(fast, plain, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(fast, model.get_latent_representation(test, seed=3))
    assert not np.array_equal(fast, model.get_latent_representation(test, seed=4))


def test_first_layer_parts_are_for_eval_and_leave_the_weights_alone(trained_rnagan):
    model, test = trained_rnagan
    disc = model.module.discriminator
    before = {k: v.clone() for k, v in model.module.state_dict().items()}
    model.module.train()
    try:
        with pytest.raises(RuntimeError, match="eval"):
            disc.first_layer_parts()
    finally:
        model.module.eval()
    with torch.inference_mode():
        parts = disc.first_layer_parts()
        x = torch.as_tensor(model._network_input(test[:6]))
        refs = torch.as_tensor(model._network_input(model.adata[:12])).reshape(6, 2, -1)
        pairs = disc.logit_codes(disc.target_codes(x, parts), disc.set_codes(refs, parts))
        torch.testing.assert_close(pairs, disc(x, refs), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(disc.embed_codes(disc.target_codes(x, parts), disc.set_codes(refs, parts)),
                                   disc.embed(x, refs), rtol=1e-5, atol=1e-5)
    after = model.module.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


@settings(max_examples=60, deadline=None)
@given(pool_size=st.integers(1, 12), size=st.integers(1, 5), n_draws=st.integers(1, 6),
       n_targets=st.integers(1, 15), seed=st.integers(0, 2**16))
def test_no_target_is_scored_against_a_set_holding_itself(pool_size, size, n_draws, n_targets, seed):
    rng = np.random.default_rng(seed)
    pool = np.sort(rng.choice(40, size=pool_size, replace=False))
    if pool_size == 1:  # a pool of one empties when its member is the target (stratify fails then, as before)
        pool = np.append(pool, 40)
    own = rng.choice(np.concatenate([pool, [-1, 41]]), size=n_targets)
    table, choice = shared_draws(np.random.default_rng(seed), pool, own, n_draws, size, 2 * n_draws)
    assert table.shape[1] == size and choice.shape == (n_targets, n_draws)
    assert np.isin(table, pool).all() and (choice < len(table)).all()
    for i in range(n_targets):
        sets = table[choice[i]]
        assert not (sets == own[i]).any()
        assert len(np.unique(choice[i])) == n_draws  # distinct sets per target
    again = shared_draws(np.random.default_rng(seed), pool, own, n_draws, size, 2 * n_draws)
    np.testing.assert_array_equal(again[0], table)
    np.testing.assert_array_equal(again[1], choice)


def test_the_table_is_shared_and_extra_sets_only_where_needed():
    pool = np.arange(100)
    own = np.arange(100)
    table, choice = shared_draws(np.random.default_rng(0), pool, own, 20, 5, 40)
    # sets of 5 from 100: a target lies in about 2 of the 40 shared sets, so no target needs its own sets
    assert len(table) == 40
    small = np.arange(5)  # every set of a 5-member group with 5 references holds every member
    table, choice = shared_draws(np.random.default_rng(0), small, small, 3, 5, 6)
    assert len(table) == 6 + 5 * 3 and all(not (table[choice[i]] == i).any() for i in range(5))
