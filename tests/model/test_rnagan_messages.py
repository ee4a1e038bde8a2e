"""What RNAGAN tells the user: its training plan, ignored budgets, a model at chance, a one-group stratification."""

import logging
import warnings

import numpy as np
import pytest

from scsynth.model import RNAGAN
from scsynth.model._rnagan import CHANCE_ACCURACY, RNAGANTrainingWarning

from ..conftest import GENE_SETS, SMALL_RG
from ..conftest import rnagan_samples as _samples


@pytest.fixture(scope="module")
def bulk_data():
    adata = _samples(n_per_group=10)
    RNAGAN.setup_anndata(adata, labels_key="group", modality="bulk")
    return adata


def test_plan_names_stages_steps_and_ignored_budgets(bulk_data):
    model = RNAGAN(bulk_data, gene_sets=GENE_SETS, **SMALL_RG)
    with pytest.warns(FutureWarning, match="training_plan"):
        old = model.training_plan(200, 200)
    assert model.training_plan({"sc": 200, "bulk": 200}) == old == (
        "RNAGAN plan: bulk only: max_steps['sc'] ignored (no single-cell samples); bulk stage: 100 discriminator "
        "warm-up + 100 adversarial steps, of 64 episodes each.")
    plan = model.training_plan({"sc": 0, "bulk": 75}, warmup_steps=0, option_names={"sc": "--sc-steps", "bulk": "--bulk-steps"})
    assert "--sc-steps" not in plan and "bulk stage: 76 adversarial steps (--bulk-steps 75 rounded up" in plan
    assert "nothing to train" in model.training_plan({"sc": 10, "bulk": 0})

    both = _samples(n_per_group=10, modality=np.repeat(["sc", "bulk"], 20))
    RNAGAN.setup_anndata(both, labels_key="group", modality_key="modality")
    plan = RNAGAN(both, gene_sets=GENE_SETS, **SMALL_RG).training_plan({"sc": 100, "bulk": 50})
    assert plan.startswith("RNAGAN plan: 20 single-cell + 20 bulk samples; sc stage: 50 discriminator warm-up + "
                           "50 adversarial steps; then bulk stage: 50 adversarial steps (fine-tuning")


def test_few_steps_warn_of_ignored_budget_and_chance(bulk_data, caplog, capsys, tmp_path):
    model = RNAGAN(bulk_data, gene_sets=GENE_SETS, **SMALL_RG)
    with caplog.at_level(logging.INFO, logger="scsynth"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.train(max_steps={"sc": 200, "bulk": 4}, batch_size=16, seed=0)
    messages = [str(w.message) for w in caught if issubclass(w.category, RNAGANTrainingWarning)]
    assert all(w.filename == __file__ for w in caught if issubclass(w.category, RNAGANTrainingWarning))
    assert "RNAGAN plan: bulk only: max_steps['sc'] ignored" in caplog.text and "2 discriminator warm-up" in caplog.text
    assert any(m.startswith("max_steps['sc']=200 is ignored: the data hold no single-cell samples") for m in messages)
    # 4 steps cannot teach the discriminator anything: the kept weights are at chance and the model says so
    assert model.episode_accuracy_["bulk"] < CHANCE_ACCURACY and model.at_chance_ == {"bulk_warmup": True,
                                                                                     "bulk": True}
    chance = [m for m in messages if "stage ended at chance" in m]
    assert len(chance) == 1 and "max_steps={'bulk': 1000}; it was 4" in chance[0] and "obs['group']" in chance[0]
    # one bar per stage, named after it, counting steps
    err = capsys.readouterr().err
    assert "RNAGAN bulk warm-up" in err and "RNAGAN bulk adversarial" in err and "2/2" in err
    # the verdict is saved with the model
    model.save(tmp_path / "m")
    loaded = RNAGAN.load(tmp_path / "m")
    assert loaded.at_chance_ == model.at_chance_ and loaded.episode_accuracy_ == model.episode_accuracy_

    # stratify with a model at chance says so, and, when every sample lands in one group (forced here), says that
    with pytest.warns(RNAGANTrainingWarning, match=r"training ended at chance \(episode accuracy bulk 0\.\d\d"):
        model.stratify(bulk_data, n_draws=2, calibrate=False)
    def one_group(target_x, *args):
        logits = np.zeros((len(target_x), 4))
        logits[:, 2] = 1.0
        return logits

    model._group_logits = one_group
    with pytest.warns(RNAGANTrainingWarning, match="assigned all 40 samples to 'type 2'.*training ended at chance"):
        model.stratify(bulk_data, n_draws=2, calibrate=False)
    assert (bulk_data.obs["rnagan"] == "type 2").all()


def test_default_budgets_do_not_warn(bulk_data):
    model = RNAGAN(bulk_data, gene_sets=GENE_SETS, **SMALL_RG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.train(max_steps={"bulk": 2}, batch_size=8, warmup_steps=1, seed=0)  # sc_steps: the default, ignored quietly
    assert not [w for w in caught if "is ignored" in str(w.message)]


def test_a_model_that_learned_gives_no_chance_warning(trained_rnagan):
    model, test = trained_rnagan
    test = test.copy()  # the fixture's samples are shared with other tests
    assert set(model.at_chance_) == {"sc_warmup", "sc"} and not any(model.at_chance_.values())
    assert model.episode_accuracy_["sc"] >= CHANCE_ACCURACY
    with warnings.catch_warnings():
        warnings.simplefilter("error", RNAGANTrainingWarning)
        model.stratify(test, n_draws=4, seed=0, key_added="messages_check")
    assert test.obs["messages_check"].nunique() > 1
