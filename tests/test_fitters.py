"""StructuredNoiseFitter: estimator conventions, structures, streaming, bad input."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.covariance import ledoit_wolf, oas
from sklearn.utils.estimator_checks import parametrize_with_checks

from structnoise import StructuredNoiseFitter
from structnoise.covariance import CovarianceMemoryError


def make_pairs(rng, n=400, d=6, scales=(1, 2, 3, .1, .1, .1)):
    clean = rng.randn(n, d)
    mix = np.eye(d) + 0.3 * rng.randn(d, d)
    delta = (rng.randn(n, d) * np.asarray(scales)) @ mix + 0.5
    return np.stack([clean, clean + delta], axis=1), delta


def _checks_that_do_not_apply(estimator):
    """A randomized SVD needs all the deltas at once: partial_fit refuses it, by design."""
    if estimator.get_params()["svd_solver"] == "randomized":
        reason = "partial_fit refuses svd_solver='randomized' (it needs all deltas at once)"
        return {"check_fit_score_takes_y": reason, "check_n_features_in_after_fitting": reason}
    return {}


@parametrize_with_checks([
    StructuredNoiseFitter(random_state=0),
    StructuredNoiseFitter(structure="lowrank", rank=1, random_state=0),
    StructuredNoiseFitter(structure="lowrank", rank=0.9, svd_solver="randomized",
                          random_state=0),
    StructuredNoiseFitter(structure="isotropic", shrinkage=None, random_state=0),
    StructuredNoiseFitter(shrinkage=None, trace_scale=2.0, reg_covar=1e-4, random_state=0),
], expected_failed_checks=_checks_that_do_not_apply)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("shrinkage,ref", [("ledoit_wolf", ledoit_wolf), ("oas", oas)])
def test_full_equals_shrunk_covariance_of_deltas(rng, shrinkage, ref):
    pairs, delta = make_pairs(rng)
    f = StructuredNoiseFitter(shrinkage=shrinkage).fit(pairs)
    cov, s = ref(delta)
    np.testing.assert_allclose(f.covariance_, cov, rtol=1e-9)
    assert f.shrinkage_ == pytest.approx(s)
    np.testing.assert_allclose(f.location_, delta.mean(0))
    assert f.n_features_in_ == 6 and f.n_samples_seen_ == 400
    # 2-D input is taken as precomputed deltas
    g = StructuredNoiseFitter(shrinkage=shrinkage).fit(delta)
    np.testing.assert_allclose(g.covariance_, f.covariance_, rtol=1e-12)


def test_float_and_none_shrinkage(rng):
    pairs, delta = make_pairs(rng)
    S = np.cov(delta.T, bias=True)
    mu = np.trace(S) / 6
    f = StructuredNoiseFitter(shrinkage=0.25).fit(pairs)
    np.testing.assert_allclose(f.covariance_, 0.75 * S + 0.25 * mu * np.eye(6), rtol=1e-9)
    g = StructuredNoiseFitter(shrinkage=None).fit(pairs)
    np.testing.assert_allclose(g.covariance_, S, rtol=1e-9)
    assert g.shrinkage_ == 0.0


@pytest.mark.parametrize("structure", ["full", "diagonal", "isotropic", "lowrank"])
def test_structures_keep_the_trace(rng, structure):
    pairs, _ = make_pairs(rng)
    full = StructuredNoiseFitter().fit(pairs)
    f = StructuredNoiseFitter(structure=structure, rank=2).fit(pairs)
    assert np.trace(f.covariance_) == pytest.approx(np.trace(full.covariance_), rel=1e-9)
    if structure == "isotropic":
        np.testing.assert_allclose(f.covariance_, np.eye(6) * np.trace(full.covariance_) / 6)
    if structure == "diagonal":
        np.testing.assert_allclose(f.covariance_, np.diag(np.diag(full.covariance_)))
    if structure == "lowrank":
        w, V = np.linalg.eigh(full.covariance_)
        top = (V[:, -2:] * w[-2:]) @ V[:, -2:].T
        expected = top + np.diag(np.diag(full.covariance_ - top))
        np.testing.assert_allclose(f.covariance_, expected, atol=1e-9)


@pytest.mark.parametrize("structure", ["full", "diagonal", "isotropic", "lowrank"])
def test_samples_have_the_covariance(rng, structure):
    pairs, _ = make_pairs(rng)
    f = StructuredNoiseFitter(structure=structure, rank=2, scale=2.0, random_state=0).fit(pairs)
    eps = f.sample(50_000)
    emp = np.cov(eps.T)
    expected = 4.0 * f.covariance_
    np.testing.assert_allclose(emp, expected, atol=0.05 * np.abs(expected).max())
    assert np.abs(eps.mean(0)).max() < 0.1


def test_singular_covariance_samples(rng):
    # deltas in a 2-D subspace of 5 features, unshrunk: singular covariance
    delta = rng.randn(100, 2) @ rng.randn(2, 5)
    f = StructuredNoiseFitter(shrinkage=None, random_state=0).fit(delta)
    eps = f.sample(20_000)
    atol = 0.05 * np.abs(f.covariance_).max()
    np.testing.assert_allclose(np.cov(eps.T), f.covariance_, atol=atol)


def test_transform_adds_zero_mean_noise(rng):
    pairs, _ = make_pairs(rng)
    f = StructuredNoiseFitter(random_state=0).fit(pairs)
    clean = pairs[:, 0]
    out = f.transform(clean)
    assert out.shape == clean.shape
    np.testing.assert_allclose(f.transform(pairs).shape, clean.shape)
    # zero mean: the added noise averages out, even though the deltas do not
    # (make_pairs shifts them by 0.5)
    big = np.repeat(clean, 200, axis=0)
    noise = f.transform(big) - big
    sd = np.sqrt(np.diag(f.covariance_))
    assert np.all(np.abs(noise.mean(0)) < 4 * sd / np.sqrt(len(big)))
    assert np.all(np.abs(f.location_ - 0.5) < 0.5)  # the mean delta is estimated
    f.set_params(scale=0.0)
    np.testing.assert_array_equal(f.transform(clean), clean)


def test_same_seed_same_noise(rng):
    pairs, _ = make_pairs(rng)
    a = StructuredNoiseFitter(random_state=3).fit(pairs).transform(pairs[:, 0])
    b = StructuredNoiseFitter(random_state=3).fit(pairs).transform(pairs[:, 0])
    np.testing.assert_array_equal(a, b)


def test_activation_maps_are_flattened(rng):
    maps = rng.randn(50, 2, 2, 3, 3)
    f = StructuredNoiseFitter().fit(maps)
    assert f.n_features_in_ == 18
    delta = (maps[:, 1] - maps[:, 0]).reshape(50, -1)
    np.testing.assert_allclose(f.covariance_, ledoit_wolf(delta)[0], rtol=1e-9)


def test_torch_pairs(rng):
    pairs, delta = make_pairs(rng)
    f = StructuredNoiseFitter().fit(torch.from_numpy(pairs))
    np.testing.assert_allclose(f.covariance_, ledoit_wolf(delta)[0], rtol=1e-9)
    out = f.transform(torch.from_numpy(pairs[:, 0]).float())
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32


@pytest.mark.parametrize("structure", ["full", "diagonal", "isotropic", "lowrank"])
def test_partial_fit_equals_fit(rng, structure):
    pairs, _ = make_pairs(rng, n=300)
    full = StructuredNoiseFitter(structure=structure, rank=2).fit(pairs)
    part = StructuredNoiseFitter(structure=structure, rank=2)
    for batch in np.array_split(pairs, 7):
        part.partial_fit(batch)
    np.testing.assert_allclose(part.covariance_, full.covariance_, rtol=1e-8, atol=1e-12)
    assert part.shrinkage_ == pytest.approx(full.shrinkage_, rel=1e-8)
    assert part.n_samples_seen_ == 300


def test_to_torch_module(rng):
    pairs, _ = make_pairs(rng)
    f = StructuredNoiseFitter(random_state=0).fit(pairs)
    module = f.to_torch()
    x = torch.zeros(20_000, 6)
    noisy = module(x)
    emp = np.cov(noisy.numpy().T.astype(np.float64))
    np.testing.assert_allclose(emp, f.covariance_, atol=0.05 * np.abs(f.covariance_).max())
    # reproducible per seed, fresh draws per call
    a = f.to_torch()(torch.zeros(3, 6))
    b = f.to_torch()(torch.zeros(3, 6))
    torch.testing.assert_close(a, b)
    m = f.to_torch()
    assert not torch.equal(m(torch.zeros(3, 6)), m(torch.zeros(3, 6)))
    # activation maps are flattened and reshaped back; float64 follows the input
    assert module(torch.zeros(4, 6, dtype=torch.float64)).dtype == torch.float64
    with pytest.raises(ValueError, match="width 6"):
        module(torch.zeros(4, 5))
    module.scale = 0.0
    assert torch.equal(module(x[:2]), x[:2])


def test_pickle_and_clone(rng):
    pairs, _ = make_pairs(rng)
    f = StructuredNoiseFitter(structure="lowrank", rank=2).fit(pairs)
    g = pickle.loads(pickle.dumps(f))
    np.testing.assert_array_equal(g.covariance_, f.covariance_)
    assert clone(f).get_params() == f.get_params()


# ----------------------------------------------------------------- bad input
def _assert_unchanged(f, before):
    np.testing.assert_array_equal(f.covariance_, before)


@pytest.mark.parametrize("bad_value", [np.nan, np.inf])
def test_nan_inf_rejected(rng, bad_value):
    pairs, _ = make_pairs(rng)
    f = StructuredNoiseFitter().fit(pairs)
    before = f.covariance_.copy()
    bad = pairs.copy()
    bad[3, 1, 2] = bad_value
    with pytest.raises(ValueError, match="NaN|infinity"):
        StructuredNoiseFitter().fit(bad)
    with pytest.raises(ValueError, match="NaN|infinity"):
        f.partial_fit(bad)
    with pytest.raises(ValueError, match="NaN|infinity"):
        StructuredNoiseFitter().fit(torch.from_numpy(bad))
    _assert_unchanged(f, before)


def test_axis1_not_two(rng):
    with pytest.raises(ValueError, match="axis 1 has size 3, expected 2"):
        StructuredNoiseFitter().fit(rng.randn(10, 3, 4))


def test_too_few_samples(rng):
    with pytest.raises(ValueError, match="minimum of 2 is required|at least 2"):
        StructuredNoiseFitter().fit(rng.randn(1, 2, 4))


def test_wrong_width_later(rng):
    pairs, _ = make_pairs(rng)
    f = StructuredNoiseFitter().fit(pairs)
    before = f.covariance_.copy()
    msg = "X has 5 features, but StructuredNoiseFitter is expecting 6"
    with pytest.raises(ValueError, match=msg):
        f.transform(rng.randn(4, 5))
    with pytest.raises(ValueError, match="expecting 6"):
        f.partial_fit(rng.randn(4, 2, 5))
    _assert_unchanged(f, before)
    assert f.n_samples_seen_ == 400


@pytest.mark.parametrize("params,match", [
    ({"shrinkage": "ledoit"}, "shrinkage"),
    ({"shrinkage": 1.5}, "shrinkage"),
    ({"structure": "banded"}, "structure"),
    ({"rank": 0}, "rank"),
    ({"structure": "lowrank", "rank": 7}, "rank=7 is out of range"),
    ({"scale": -1.0}, "scale"),
    ({"trace_scale": 0.0}, "trace_scale"),
    ({"trace_scale": -1.0}, "trace_scale"),
    ({"trace_scale": float("nan")}, "trace_scale"),
    ({"trace_scale": "2"}, "trace_scale"),
    ({"reg_covar": -1e-4}, "reg_covar"),
])
def test_bad_parameters(rng, params, match):
    pairs, _ = make_pairs(rng)
    with pytest.raises(ValueError, match=match):
        StructuredNoiseFitter(**params).fit(pairs)


def test_width_too_large_for_memory(monkeypatch, rng):
    monkeypatch.setenv("STRUCTNOISE_MAX_MEMORY_BYTES", str(10**6))
    f = StructuredNoiseFitter().fit(rng.randn(20, 2, 8))
    before = f.covariance_.copy()
    wide = np.zeros((3, 2, 1000), dtype=np.float32)
    with pytest.raises(CovarianceMemoryError, match="structure='diagonal'"):
        f.fit(wide)
    _assert_unchanged(f, before)
    assert f.n_features_in_ == 8


def test_diagonal_needs_no_square_matrix_while_fitting(monkeypatch, rng):
    # diagonal with a fixed shrinkage keeps O(d) sums; only covariance_ is d x d
    monkeypatch.setenv("STRUCTNOISE_MAX_MEMORY_BYTES", str(3 * 10**6))
    X = rng.randn(30, 2, 500)
    with pytest.raises(CovarianceMemoryError):
        StructuredNoiseFitter().fit(X)
    f = StructuredNoiseFitter(structure="diagonal", shrinkage=None).fit(X)
    np.testing.assert_allclose(np.diag(f.covariance_), (X[:, 1] - X[:, 0]).var(0), rtol=1e-9)


# ----------------------------------------------------------- trace_scale
@pytest.mark.parametrize("trace_scale", [0.5, 2.0])
def test_trace_scale_equalises_every_structure(rng, trace_scale):
    pairs, _ = make_pairs(rng)
    d = pairs.shape[2]
    fitted = {s: StructuredNoiseFitter(structure=s, rank=2, trace_scale=trace_scale,
                                       random_state=0).fit(pairs)
              for s in ("full", "diagonal", "isotropic", "lowrank")}
    for s, f in fitted.items():
        assert np.trace(f.covariance_) == pytest.approx(trace_scale * d, rel=1e-10), s
    np.testing.assert_allclose(fitted["isotropic"].covariance_, trace_scale * np.eye(d),
                               atol=1e-12)
    # the diagonal keeps the full matrix's diagonal proportions
    full_diag = np.diag(fitted["full"].covariance_)
    np.testing.assert_allclose(np.diag(fitted["diagonal"].covariance_), full_diag, rtol=1e-10)
    # the rescaled matrix is the unscaled one times a constant
    raw = StructuredNoiseFitter(random_state=0).fit(pairs).covariance_
    np.testing.assert_allclose(fitted["full"].covariance_,
                               raw * trace_scale * d / np.trace(raw), rtol=1e-10)


@pytest.mark.parametrize("structure", ["full", "diagonal", "isotropic", "lowrank"])
def test_trace_scaled_samples_have_the_rescaled_covariance(rng, structure):
    pairs, _ = make_pairs(rng)
    f = StructuredNoiseFitter(structure=structure, rank=2, trace_scale=2.0,
                              random_state=0).fit(pairs)
    draws = f.sample(200_000)
    np.testing.assert_allclose(np.cov(draws.T), f.covariance_, atol=0.05 * 2.0)
    module = f.to_torch(dtype=torch.float64)
    eps = module.sample(200_000).numpy()
    np.testing.assert_allclose(np.cov(eps.T), f.covariance_, atol=0.05 * 2.0)


def test_trace_scale_rescales_the_factor_without_refactoring(rng, monkeypatch):
    pairs, _ = make_pairs(rng)
    raw = StructuredNoiseFitter(random_state=0).fit(pairs)
    from structnoise import fitters

    calls = []
    real = fitters._STRUCTURES["full"]
    monkeypatch.setitem(fitters._STRUCTURES, "full", lambda *a: calls.append(a) or real(*a))
    scaled = StructuredNoiseFitter(trace_scale=1.0, random_state=0).fit(pairs)
    assert len(calls) == 1  # one factorisation, of the unscaled matrix
    c = pairs.shape[2] / np.trace(raw.covariance_)
    np.testing.assert_allclose(scaled.factor_, raw.factor_ * np.sqrt(c), rtol=1e-10)


def test_shrinkage_none_is_the_plain_sample_covariance(rng):
    pairs, delta = make_pairs(rng)
    f = StructuredNoiseFitter(shrinkage=None, reg_covar=1e-4).fit(pairs)
    n = len(delta)
    expected = np.cov(delta.T, ddof=1) * (n - 1) / n + 1e-4 * np.eye(delta.shape[1])
    np.testing.assert_allclose(f.covariance_, expected, rtol=1e-10)
    # with trace_scale the ddof does not matter: the authors' ddof=1 matrix
    # rescaled is the same noise
    t = StructuredNoiseFitter(shrinkage=None, trace_scale=2.0).fit(pairs).covariance_
    authors = np.cov(delta.T, ddof=1)
    np.testing.assert_allclose(t, authors * 2.0 * delta.shape[1] / np.trace(authors),
                               rtol=1e-10)


def test_trace_scale_of_a_zero_covariance_is_refused(rng):
    clean = rng.randn(50, 4)
    pairs = np.stack([clean, clean], axis=1)
    with pytest.raises(ValueError, match="do not differ"):
        StructuredNoiseFitter(shrinkage=None, trace_scale=2.0).fit(pairs)


# ----------------------------------------------------------- low rank: automatic rank,
# and the randomized path that never forms the (d, d) matrix
def _low_rank_deltas(rng, n=300, d=40, k=5):
    """Deltas with k strong directions and a weak isotropic rest."""
    strong = rng.randn(n, k) * np.array([10.0, 8.0, 6.0, 4.0, 3.0])[:k]
    return strong @ np.linalg.qr(rng.randn(d, k))[0].T + 0.1 * rng.randn(n, d) + 1.0


@pytest.mark.parametrize("fraction", [0.5, 0.9, 0.99])
@pytest.mark.parametrize("solver", ["covariance_eigh", "randomized"])
def test_fractional_rank_is_the_fewest_directions_keeping_that_variance(rng, fraction, solver):
    delta = _low_rank_deltas(rng)
    f = StructuredNoiseFitter(structure="lowrank", rank=fraction, shrinkage=None,
                              svd_solver=solver, random_state=0).fit(delta)
    # naive reference: PCA's rule on the eigenvalues of the sample covariance
    w = np.linalg.eigvalsh(np.cov(delta.T, ddof=0))[::-1]
    expected = int(np.argmax(np.cumsum(w) / w.sum() >= fraction)) + 1
    assert f.rank_ == expected
    assert f.factor_.shape == (delta.shape[1], expected)


@pytest.mark.parametrize("shrinkage", [None, 0.3, "ledoit_wolf", "oas"])
def test_randomized_lowrank_matches_the_covariance_eigh_path(rng, shrinkage):
    delta = _low_rank_deltas(rng)
    kw = dict(structure="lowrank", rank=5, shrinkage=shrinkage, reg_covar=1e-3,
              trace_scale=2.0, random_state=0)
    exact = StructuredNoiseFitter(svd_solver="covariance_eigh", **kw).fit(delta)
    fast = StructuredNoiseFitter(svd_solver="randomized", **kw).fit(delta)
    assert fast.shrinkage_ == pytest.approx(exact.shrinkage_, rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(fast.location_, exact.location_, rtol=1e-10)
    np.testing.assert_allclose(fast.covariance_, exact.covariance_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(fast.diag_std_, exact.diag_std_, rtol=1e-6, atol=1e-8)


def test_lowrank_keeps_the_diagonal_of_the_estimate(rng):
    delta = _low_rank_deltas(rng)
    full = StructuredNoiseFitter(shrinkage="ledoit_wolf").fit(delta)
    for solver in ("covariance_eigh", "randomized"):
        low = StructuredNoiseFitter(structure="lowrank", rank=0.95, svd_solver=solver,
                                    random_state=0).fit(delta)
        np.testing.assert_allclose(np.diag(low.covariance_), np.diag(full.covariance_),
                                   rtol=1e-8)


def test_randomized_path_never_forms_the_square_matrix(monkeypatch, rng):
    # the memory guard refuses any (d, d) matrix: only the O(n d) path fits
    d = 1500
    monkeypatch.setenv("STRUCTNOISE_MAX_MEMORY_BYTES", str(10 * d * d))
    delta = rng.randn(50, 3) @ rng.randn(3, d) + 0.01 * rng.randn(50, d)
    with pytest.raises(CovarianceMemoryError):
        StructuredNoiseFitter(structure="lowrank", svd_solver="covariance_eigh").fit(delta)
    f = StructuredNoiseFitter(structure="lowrank", rank=0.99, random_state=0).fit(delta)
    assert f.rank_ <= 10 and f.factor_.shape[0] == d  # "auto" took the randomized path
    assert "_covariance" not in vars(f)


def test_randomized_solver_refuses_partial_fit(rng):
    f = StructuredNoiseFitter(structure="lowrank", svd_solver="randomized")
    with pytest.raises(ValueError, match="needs all the deltas at once"):
        f.partial_fit(rng.randn(20, 4))


@pytest.mark.parametrize("n,d", [(30, 50), (50, 30)])
def test_frobenius_norm_without_the_square_matrix(rng, n, d):
    from structnoise.fitters import _frobenius2

    D = rng.randn(n, d)
    assert _frobenius2(D) == pytest.approx(np.sum((D.T @ D) ** 2), rel=1e-12)


def test_fit_equals_partial_fit_on_a_fresh_estimator(rng):
    pairs, _ = make_pairs(rng)
    for structure in ("full", "diagonal", "isotropic", "lowrank"):
        a = StructuredNoiseFitter(structure=structure, random_state=0).fit(pairs[:50])
        a.fit(pairs)  # a second fit forgets the first
        b = StructuredNoiseFitter(structure=structure, random_state=0).partial_fit(pairs)
        np.testing.assert_array_equal(a.covariance_, b.covariance_)
        assert a.n_samples_seen_ == b.n_samples_seen_ == len(pairs)


@pytest.mark.parametrize("structure", ["full", "diagonal", "isotropic", "lowrank"])
def test_fused_noise_equals_adding_the_scaled_draws(rng, structure):
    pairs, _ = make_pairs(rng)
    module = StructuredNoiseFitter(structure=structure, rank=2, random_state=0).fit(
        pairs).to_torch(dtype=torch.float64)
    x = torch.randn(7, 6, dtype=torch.float64)
    module.reset_generators()
    fused = module.add_noise(x, scale=0.7)
    module.reset_generators()
    naive = x + 0.7 * module.sample(7, dtype=torch.float64)
    torch.testing.assert_close(fused, naive)


def test_noise_from_a_known_covariance_or_a_width_without_data():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((6, 6))
    cov = a @ a.T + np.eye(6)
    full = StructuredNoiseFitter(random_state=0).fit_covariance(cov)
    np.testing.assert_allclose(full.covariance_, cov)
    assert full.n_samples_seen_ == 0 and full.n_features_in_ == 6
    scaled = StructuredNoiseFitter(structure="diagonal", trace_scale=2.0).fit_covariance(cov)
    np.testing.assert_allclose(np.trace(scaled.covariance_), 12.0)
    # an empirical check of the draws: the sample covariance approaches cov
    draws = full.sample(40000)
    assert np.linalg.norm(np.cov(draws.T) - cov) / np.linalg.norm(cov) < 0.05
    with pytest.raises(ValueError, match="symmetric"):
        StructuredNoiseFitter().fit_covariance(a)
    iso = StructuredNoiseFitter(structure="isotropic", trace_scale=0.5).fit_isotropic(4)
    np.testing.assert_allclose(iso.covariance_, 0.5 * np.eye(4))
    with pytest.raises(ValueError, match="structure='isotropic'"):
        StructuredNoiseFitter().fit_isotropic(4)
    with pytest.raises(ValueError, match="n_features"):
        StructuredNoiseFitter(structure="isotropic").fit_isotropic(0)


# ------------------------------------------------- NoiseModule: the draws' arithmetic
def _full_module(rng, d, seed=0):
    pairs = rng.randn(3 * d, 2, d)
    fitter = StructuredNoiseFitter(shrinkage=None, reg_covar=1e-4, random_state=seed).fit(pairs)
    return fitter.to_torch()


@pytest.mark.parametrize("d", [40, 600])
def test_full_noise_equals_the_naive_product_with_the_factor(rng, d):
    """Panels of the triangular factor (wide) or one product (narrow): z @ L.T either way."""
    from structnoise.fitters import _PANEL_MIN_WIDTH

    module = _full_module(rng, d)
    factor = module.factor.clone()
    assert bool(torch.equal(torch.tril(factor), factor))
    panels = module._buffers_on(factor.device, factor.dtype)[2]
    assert (panels is not None) == (d >= _PANEL_MIN_WIDTH)
    z = torch.randn(7, d, generator=torch.Generator().manual_seed(module.seed))
    naive = z @ factor.T
    module.reset_generators()
    torch.testing.assert_close(module.sample(7), naive, rtol=1e-5, atol=1e-5)
    x = torch.randn(7, d)
    module.reset_generators()
    torch.testing.assert_close(module.add_noise(x, 0.5), x + 0.5 * naive, rtol=1e-5, atol=1e-5)


def test_sample_chunks_are_the_calls_one_after_another(rng):
    module = _full_module(rng, 600)
    chunks = module.sample_chunks([3, 64, 1])
    module.reset_generators()
    calls = [module.sample(n) for n in (3, 64, 1)]
    assert [tuple(c.shape) for c in chunks] == [(3, 600), (64, 600), (1, 600)]
    for chunk, call in zip(chunks, calls, strict=True):
        torch.testing.assert_close(chunk, call, rtol=1e-5, atol=1e-5)
    # the same stream as the forward hook's add_noise, batch by batch
    module.reset_generators()
    x = torch.zeros(64, 600)
    module.sample(3)
    torch.testing.assert_close(module.add_noise(x), chunks[1], rtol=1e-5, atol=1e-5)


def test_a_factor_written_in_place_is_read_again(rng):
    """load_state_dict copies into the buffers: the cached panels must follow."""
    module = _full_module(rng, 600)
    before = module.sample(4)
    with torch.no_grad():
        module.factor.mul_(2.0)
    module.reset_generators()
    torch.testing.assert_close(module.sample(4), 2.0 * before, rtol=1e-5, atol=1e-5)


def test_pairs_without_features_complex_pairs_and_non_psd_covariances_are_refused():
    with pytest.raises(ValueError, match="X has 0 features"):
        StructuredNoiseFitter().fit(np.zeros((5, 2, 0)))
    with pytest.raises(TypeError, match="complex tensor"):
        StructuredNoiseFitter().fit(torch.zeros((5, 2, 3), dtype=torch.complex64))
    # the draws would come from a clipped matrix while covariance_ reported this one
    with pytest.raises(ValueError, match="positive semi-definite; its smallest eigenvalue is -1"):
        StructuredNoiseFitter().fit_covariance(-np.eye(3))
    fitted = StructuredNoiseFitter(random_state=0).fit_covariance(np.diag([1.0, 0.0]))
    assert fitted.sample(4).shape == (4, 2)  # semi-definite is fine
