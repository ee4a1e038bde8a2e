"""The scDesign2-style peer of the realism benchmark (benchmarks/_nb_copula.py) on small synthetic data."""

from __future__ import annotations

import sys
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import pytest
from scipy import sparse, stats

sys.path.append(str(Path(__file__).resolve().parents[2] / "benchmarks"))  # appended: shadows nothing
from _nb_copula import NBCopula, fit_count_marginals, fit_sample

MU = np.array([10.0, 8.0, 2.0, 0.5, 5.0, 20.0])
R = np.array([5.0, 4.0, 1.0, 2.0, 3.0, 0.8])
RHO = 0.7  # latent correlation of genes 0 and 1; the others are independent


def copula_nb(n: int, mu: np.ndarray, r: np.ndarray, corr: np.ndarray, seed: int) -> np.ndarray:
    """NB counts with the given means and sizes, joined by a Gaussian copula with correlation ``corr``."""
    rng = np.random.default_rng(seed)
    u = stats.norm.cdf(rng.multivariate_normal(np.zeros(len(mu)), corr, size=n))
    k = np.arange(2000)  # NB quantiles by table look-up (scipy's nbinom.ppf is slow)
    return np.column_stack([np.searchsorted(stats.nbinom.cdf(k, r[j], r[j] / (r[j] + mu[j])), u[:, j])
                            for j in range(len(mu))]).astype(float)


@pytest.fixture(scope="module")
def nb_data() -> np.ndarray:
    corr = np.eye(len(MU))
    corr[0, 1] = corr[1, 0] = RHO
    return copula_nb(3000, MU, R, corr, seed=0)


def test_nb_marginals_recovered(nb_data):
    fit = fit_count_marginals(nb_data)
    assert (fit["family"] == "NB").all(), fit["family"].tolist()
    np.testing.assert_allclose(fit["mu"], MU, rtol=0.04)
    np.testing.assert_allclose(fit["r"], R, rtol=0.2)
    y = NBCopula().fit(nb_data, seed=0).sample(6000, seed=1)
    assert y.dtype == np.float32 and np.array_equal(y, np.round(y))
    np.testing.assert_allclose(y.mean(0), MU, rtol=0.05)
    np.testing.assert_allclose(y.var(0), MU + MU**2 / R, rtol=0.15)
    np.testing.assert_allclose((y == 0).mean(0), (nb_data == 0).mean(0), atol=0.02)


def test_copula_correlation_recovered(nb_data):
    y = NBCopula().fit(nb_data, seed=0).sample(6000, seed=1)
    real, gen = np.corrcoef(nb_data.T), np.corrcoef(y.T)
    assert real[0, 1] > 0.55
    assert abs(gen[0, 1] - real[0, 1]) < 0.08, (gen[0, 1], real[0, 1])
    off = ~np.eye(len(MU), dtype=bool)
    off[0, 1] = off[1, 0] = False
    assert np.abs(gen[off]).max() < 0.06  # independent genes stay independent


@pytest.mark.parametrize("rho", [0.9, -0.6])
def test_attenuation_correction_recovers_sparse_correlation(rho):
    mu, r = np.array([0.4, 0.4]), np.array([1.0, 1.0])  # ~72% zeros: the randomised PIT dilutes correlation
    x = copula_nb(3000, mu, r, np.array([[1.0, rho], [rho, 1.0]]), seed=3)
    real = np.corrcoef(x.T)[0, 1]
    plain = np.corrcoef(NBCopula().fit(x).sample(8000, seed=1).T)[0, 1]
    fixed = np.corrcoef(NBCopula(correct_attenuation=True).fit(x).sample(8000, seed=1).T)[0, 1]
    assert abs(plain) < 0.5 * abs(real)  # scDesign2's plain estimate is attenuated twice (fit and sampling)
    latent = NBCopula(correct_attenuation=True).fit(x).params_[0]["factor"]
    assert abs((latent.T @ latent)[0, 1] - rho) < 0.1  # the inversion finds the latent one (S is ~0.4 rho)
    assert abs(fixed - real) < 0.04, (fixed, real)


def test_poisson_genes_stay_poisson():
    lam = np.linspace(0.5, 20, 20)
    x = np.random.default_rng(1).poisson(lam, size=(2000, 20)).astype(float)
    fit = fit_count_marginals(x)
    assert ((fit["family"] == "Poisson") | (fit["r"] > 30)).all(), fit
    assert (fit["pi"] == 0).all()
    y = NBCopula().fit(x, seed=0).sample(5000, seed=2)
    np.testing.assert_allclose(y.var(0) / y.mean(0), 1.0, atol=0.12)


def test_zero_inflation_detected_only_where_present():
    rng = np.random.default_rng(2)
    n = 3000
    nb = rng.negative_binomial(2.0, 2.0 / (2.0 + 6.0), size=(n, 10)).astype(float)
    zinb = nb[:, :3] * (rng.random((n, 3)) > 0.4)  # 40% structural zeros on top of NB(6, 2)
    x = np.hstack([zinb, nb[:, 3:], np.zeros((n, 1))])
    fit = fit_count_marginals(x)
    assert (fit["family"][:3] == "ZINB").all()
    np.testing.assert_allclose(fit["pi"][:3], 0.4, atol=0.05)
    np.testing.assert_allclose(fit["mu"][:3], 6.0, rtol=0.06)
    assert (fit["family"][3:10] == "NB").sum() >= 6  # a false positive at alpha = 0.05 at most
    assert fit["family"].iloc[10] == "zero"
    y = NBCopula().fit(x, seed=0).sample(5000, seed=1)
    np.testing.assert_allclose((y[:, :3] == 0).mean(0), (x[:, :3] == 0).mean(0), atol=0.025)
    assert not y[:, 10].any()  # an all-zero gene stays zero


def test_labels_means_and_requests():
    rng = np.random.default_rng(4)
    mu_a, mu_b = np.array([2.0, 10.0, 0.0, 5.0]), np.array([12.0, 1.0, 3.0, 5.0])
    x = np.vstack([rng.poisson(mu_a, size=(300, 4)), rng.poisson(mu_b, size=(900, 4))]).astype(float)
    labels = np.repeat(["a", "b"], [300, 900])
    model = NBCopula().fit(x, labels, seed=0)
    want = np.repeat(["b", "a", "b"], [1000, 3000, 1000])
    y = model.sample(len(want), labels=want, seed=1)
    np.testing.assert_allclose(y[want == "a"].mean(0), mu_a, rtol=0.05, atol=0.02)
    np.testing.assert_allclose(y[want == "b"].mean(0), mu_b, rtol=0.05)
    assert not y[want == "a", 2].any()  # gene 2 is silent in group a
    y = model.sample(4000, seed=2)
    drawn = model.labels_
    assert abs((drawn == "a").mean() - 0.25) < 0.03
    np.testing.assert_allclose(y[drawn == "b"].mean(0), mu_b, rtol=0.06)
    with pytest.raises(ValueError, match="Unknown labels"):
        model.sample(2, labels=["a", "c"])


def test_non_count_path_reproduces_quantiles():
    rng = np.random.default_rng(5)
    z = rng.multivariate_normal([0, 0, 0], [[1, 0.8, 0], [0.8, 1, 0], [0, 0, 1]], size=1500)
    x = np.exp(z) * (rng.random((1500, 3)) > np.array([0.0, 0.0, 0.5]))  # dropouts in gene 2
    with pytest.raises(ValueError, match="non-integer"):
        NBCopula().fit(x)
    y = NBCopula().fit(x, is_count_data=False, seed=0).sample(6000, seed=1)
    q = np.linspace(0.05, 0.95, 19)
    np.testing.assert_allclose(np.quantile(y, q, axis=0), np.quantile(x, q, axis=0), rtol=0.08, atol=0.02)
    np.testing.assert_allclose((y == 0).mean(0), (x == 0).mean(0), atol=0.02)
    for j in range(3):
        assert np.isin(y[:, j], x[:, j].astype(np.float32)).all()  # the empirical marginal: training values
    rho_real, rho_gen = stats.spearmanr(x).statistic, stats.spearmanr(y).statistic
    assert rho_real[0, 1] > 0.7 and abs(rho_gen[0, 1] - rho_real[0, 1]) < 0.04
    assert abs(rho_gen[0, 2]) < 0.05


def test_seeds_reproduce(nb_data):
    labels = np.where(np.arange(len(nb_data)) % 3 == 0, "x", "y")
    a = NBCopula().fit(nb_data, labels, seed=0)
    b = NBCopula().fit(nb_data, labels, seed=0)
    c = NBCopula().fit(nb_data, labels, seed=1)  # another randomised PIT: another correlation estimate
    np.testing.assert_array_equal(a.sample(500, seed=3), b.sample(500, seed=3))
    assert not np.array_equal(a.sample(500, seed=3), a.sample(500, seed=4))
    assert not np.array_equal(a.sample(500, seed=3), c.sample(500, seed=3))


def test_fit_sample_anndata():
    rng = np.random.default_rng(6)
    x = np.vstack([rng.poisson([1.0, 9.0, 3.0], size=(80, 3)), rng.poisson([9.0, 1.0, 3.0], size=(40, 3))])
    obs = pd.DataFrame({"t": np.repeat(["u", "v"], [80, 40])}, index=[f"c{i}" for i in range(120)])
    train = anndata.AnnData(sparse.csr_matrix(x.astype(np.float32)), obs=obs,
                            var=pd.DataFrame(index=["g1", "g2", "g3"]))
    out = fit_sample(train, 50, labels_key="t", condition=["v"] * 50, seed=0)
    assert sparse.isspmatrix_csr(out.X) and out.shape == (50, 3)
    assert list(out.var_names) == ["g1", "g2", "g3"] and (out.obs["t"] == "v").all()
    dense = out.X.toarray()
    assert dense[:, 0].mean() > 3 * dense[:, 1].mean()  # group v's profile
    clustered = fit_sample(train, 400, n_clusters=2, seed=0).X.toarray()
    # two clusters (one per group) keep the anticorrelation of genes 1 and 2 that one Poisson pair cannot have
    assert np.corrcoef(clustered[:, :2].T)[0, 1] < -0.5
