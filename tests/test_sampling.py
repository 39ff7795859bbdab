"""The vectorised samplers against the distributions themselves (scipy)."""

import numpy as np
import pytest
import torch
from scipy import stats

from structnoise import _sampling
from structnoise._sampling import _PTRS_FROM, bernoulli_positions, normal, poisson_capped, uniform


def _chi2_pvalue(counts, pmf):
    """Pearson's test of observed counts against a pmf (bins under 5 expected pooled)."""
    n = counts.sum()
    expected = pmf * n
    keep = expected >= 5
    obs = np.r_[counts[keep], counts[~keep].sum()]
    exp = np.r_[expected[keep], n - expected[keep].sum()]
    if exp[-1] < 5:  # nothing left to pool: drop the empty tail bin
        obs, exp = obs[:-1], exp[:-1]
    return stats.chi2.sf(((obs - exp) ** 2 / exp).sum(), len(obs) - 1)


def _draw(lam, n, cap, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return poisson_capped(torch.full((n,), lam, dtype=dtype), cap, g).numpy().astype(int)


# means on both sides of the switch between inversion and rejection (PTRS),
# far from any cap: the draws must follow Poisson(lam) itself
@pytest.mark.parametrize("lam", [0.05, 1.0, 4.5, _PTRS_FROM - 0.01, _PTRS_FROM, 23.0, 60.0])
def test_draws_follow_the_poisson_distribution(lam):
    k = _draw(lam, 200_000, cap=1000)
    support = np.arange(k.max() + 1)
    assert _chi2_pvalue(np.bincount(k), stats.poisson.pmf(support, lam)) > 1e-4
    assert abs(k.mean() - lam) < 5 * np.sqrt(lam / k.size)


@pytest.mark.parametrize("lam, cap", [(4.0, 3), (12.0, 12), (0.5, 1), (30.0, 25)])
def test_capped_draws_follow_min_of_poisson_and_cap(lam, cap):
    k = _draw(lam, 200_000, cap=cap, seed=1)
    assert k.max() <= cap
    pmf = stats.poisson.pmf(np.arange(cap + 1), lam)
    pmf[cap] = stats.poisson.sf(cap - 1, lam)  # everything from cap up lands on cap
    assert _chi2_pvalue(np.bincount(k, minlength=cap + 1), pmf) > 1e-4


def test_mixed_means_each_follow_their_own_distribution():
    """One tensor with small and large means (both algorithms, one call)."""
    means = torch.tensor([0.0, 2.0, 9.0, 15.0, 40.0]).repeat(60_000)
    k = poisson_capped(means, 60, torch.Generator().manual_seed(2)).numpy().astype(int)
    assert np.all(k[means.numpy() == 0] == 0)
    for lam in (2.0, 9.0, 15.0, 40.0):
        drawn = k[means.numpy() == lam]
        pmf = stats.poisson.pmf(np.arange(61), lam)
        pmf[60] = stats.poisson.sf(59, lam)
        assert _chi2_pvalue(np.bincount(drawn, minlength=61), pmf) > 1e-4, lam


def test_shape_dtype_and_seed():
    lam = torch.rand(3, 1, 5, 7, dtype=torch.float64) * 20
    a = poisson_capped(lam, 25, torch.Generator().manual_seed(3))
    b = poisson_capped(lam, 25, torch.Generator().manual_seed(3))
    assert a.shape == lam.shape and a.dtype == torch.float64
    assert torch.equal(a, b)
    assert torch.equal(a, a.round()) and a.min() >= 0 and a.max() <= 25
    assert poisson_capped(torch.empty(0), 12, torch.Generator()).shape == (0,)


def test_shot_noise_counts_photons():
    """shot_noise at severity s is Poisson(c x) / c, c = the severity's photon count."""
    from structnoise.sources import SEVERITY_PARAMETERS, Corruption

    x = torch.full((400, 1, 8, 8), 0.25)
    c = SEVERITY_PARAMETERS["shot_noise"][0]  # 60: both algorithms' range
    photons = (Corruption("shot_noise", severity=1, random_state=0).generate(None, x) * c)
    photons = photons.round().numpy().astype(int).ravel()
    pmf = stats.poisson.pmf(np.arange(c + 1), 0.25 * c)
    pmf[c] = stats.poisson.sf(c - 1, 0.25 * c)
    assert _chi2_pvalue(np.bincount(photons, minlength=c + 1), pmf) > 1e-4


# ----------------------------------------------------------- Bernoulli trials
def _hits(n, p, trials, seed=0):
    g = torch.Generator().manual_seed(seed)
    hits = torch.zeros(trials, n)
    for t in range(trials):
        hits[t, bernoulli_positions(n, p, g)] = 1
    return hits.numpy()


@pytest.mark.parametrize("p", [0.03, 0.27, 0.9])
def test_positions_are_independent_bernoulli_trials(p):
    n, trials = 500, 400
    hits = _hits(n, p, trials)
    # the number of successes per run is Binomial(n, p)
    per_run = hits.sum(1).astype(int)
    pmf = stats.binom.pmf(np.arange(n + 1), n, p)
    assert _chi2_pvalue(np.bincount(per_run, minlength=n + 1), pmf) > 1e-4
    # every position equally likely
    per_position = hits.sum(0)
    assert stats.chisquare(per_position).pvalue > 1e-4
    # neighbours independent: both hit at rate p^2 (the gaps are geometric)
    both = (hits[:, 1:] * hits[:, :-1]).mean()
    assert abs(both - p * p) < 5 * np.sqrt(p * p * (1 - p * p) / hits[:, 1:].size)


def test_positions_when_the_first_batch_of_gaps_falls_short(monkeypatch):
    """The rare second batch (forced here: 3 gaps a batch) continues the same trials."""
    monkeypatch.setattr(_sampling, "_gap_batch", lambda n, p: 3)
    hits = _hits(200, 0.1, 300, seed=4)
    per_run = hits.sum(1).astype(int)
    pmf = stats.binom.pmf(np.arange(201), 200, 0.1)
    assert _chi2_pvalue(np.bincount(per_run, minlength=201), pmf) > 1e-4
    assert stats.chisquare(hits.sum(0)).pvalue > 1e-4


def test_positions_edge_cases():
    g = torch.Generator().manual_seed(0)
    assert bernoulli_positions(10, 0.0, g).numel() == 0
    assert torch.equal(bernoulli_positions(10, 1.0, g), torch.arange(10))
    assert bernoulli_positions(0, 0.5, g).numel() == 0
    # a gap longer than int64 would overflow ends the trials instead
    assert bernoulli_positions(1000, 1e-300, g).numel() == 0
    pos = bernoulli_positions(1000, 0.5, g)
    assert pos.dtype == torch.int64 and bool((pos.diff() > 0).all())
    assert 0 <= int(pos.min()) and int(pos.max()) < 1000
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\]"):
        bernoulli_positions(10, 1.5, g)


def test_impulse_noise_hits_each_pixel_with_the_severity_probability():
    from structnoise.sources import SEVERITY_PARAMETERS, Corruption

    x = torch.full((200, 3, 16, 16), 0.5)
    for severity in (1, 5):
        out = Corruption("impulse_noise", severity, random_state=0).generate(None, x)
        amount = SEVERITY_PARAMETERS["impulse_noise"][severity - 1]
        hit = out != 0.5
        assert set(out[hit].unique().tolist()) <= {0.0, 1.0}
        rate, n = float(hit.float().mean()), hit.numel()
        assert abs(rate - amount) < 5 * np.sqrt(amount * (1 - amount) / n)
        white = float((out[hit] == 1).float().mean())
        assert abs(white - 0.5) < 5 * np.sqrt(0.25 / int(hit.sum()))


@pytest.mark.parametrize("lam, cap", [(70.0, 60), (45.0, 80)])
def test_means_beyond_the_inversion_range(lam, cap):
    """Means or caps too large for inversion's float32 scale factors go to PTRS, capped."""
    k = _draw(lam, 100_000, cap=cap, seed=5)
    assert k.max() <= cap
    pmf = stats.poisson.pmf(np.arange(cap + 1), lam)
    pmf[cap] = stats.poisson.sf(cap - 1, lam)
    assert _chi2_pvalue(np.bincount(k, minlength=cap + 1), pmf) > 1e-4


def test_a_mean_far_above_the_cap_gives_the_cap():
    # P(Poisson(200) < 12) is about 1e-69: every draw is the cap, none NaN
    lam = torch.tensor([200.0, 1000.0, 5.0]).repeat(1000)
    k = poisson_capped(lam, 12, torch.Generator().manual_seed(5))
    assert torch.equal(k[lam > 100], torch.full((2000,), 12.0))


def test_float64_means_use_a_bounded_number_of_terms():
    g = torch.Generator().manual_seed(6)
    k = poisson_capped(torch.full((50_000,), 9.5, dtype=torch.float64), 10_000, g)
    assert k.dtype == torch.float64 and abs(float(k.mean()) - 9.5) < 0.1
    assert _sampling._inversion_steps(9.5, 1.0 - 2.0**-50, 10_000) < 60


# ------------------------------------------------------------- uniform, normal
def _naive_uniform(seed_generator, numel, dtype):
    """The documented construction, step by step in numpy: SFC64 seeded with
    the generator's next 63-bit draw; 24 low bits of each 32-bit half
    (float32) or the top 53 bits of each word (float64)."""
    seed = int(torch.randint(0, 2**63 - 1, (), generator=seed_generator))
    words = np.random.SFC64(seed).random_raw(numel if dtype == torch.float64 else (numel + 1) // 2)
    if dtype == torch.float64:
        return np.array([int(w) >> 11 for w in words], dtype=np.float64) / 2.0**53
    halves = words.view(np.uint32)[:numel]
    return np.array([int(h) & 0xFFFFFF for h in halves], dtype=np.float64) / 2.0**24


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("numel", [1, 7, 1000])
def test_uniform_is_the_documented_bits_of_sfc64(dtype, numel):
    u = uniform((numel,), torch.Generator().manual_seed(5), dtype=dtype)
    assert u.dtype == dtype and u.shape == (numel,)
    expected = _naive_uniform(torch.Generator().manual_seed(5), numel, dtype)
    np.testing.assert_array_equal(u.double().numpy(), expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_uniform_follows_the_uniform_distribution(dtype):
    u = uniform((200_000,), torch.Generator().manual_seed(0), dtype=dtype).double().numpy()
    assert u.min() >= 0 and u.max() < 1
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    # consecutive draws (the two halves of one 64-bit word in float32) independent
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.01


def test_uniform_advances_the_generator_and_keeps_the_shape():
    g = torch.Generator().manual_seed(0)
    a, b = uniform((3, 5), g), uniform((3, 5), g)
    assert a.shape == (3, 5) and not torch.equal(a, b)
    assert torch.equal(a, uniform((3, 5), torch.Generator().manual_seed(0)))
    assert uniform((0, 4), g).shape == (0, 4)
    # dtypes without an SFC64 path are torch.rand's
    h16 = uniform((4,), torch.Generator().manual_seed(1), dtype=torch.float16)
    assert torch.equal(h16, torch.rand(4, generator=torch.Generator().manual_seed(1),
                                       dtype=torch.float16))


@pytest.mark.parametrize("numel", [1, 9, 1000])
def test_normal_is_box_muller_on_the_uniforms(numel):
    # naive reference in float64 numpy: the first half of the uniforms gives
    # the radii, the second the angles; cosines first, then sines
    z = normal((numel,), torch.Generator().manual_seed(3))
    pairs = (numel + 1) // 2
    u = _naive_uniform(torch.Generator().manual_seed(3), 2 * pairs, torch.float32)
    radius = np.sqrt(-2 * np.log1p(-u[:pairs]))
    angle = 2 * np.pi * u[pairs:]
    expected = np.r_[radius * np.cos(angle), radius * np.sin(angle)][:numel]
    np.testing.assert_allclose(z.double().numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_normal_follows_the_standard_normal_distribution(dtype):
    z = normal((100_001,), torch.Generator().manual_seed(0), dtype=dtype)
    assert z.dtype == dtype and z.shape == (100_001,)
    z = z.double().numpy()
    assert stats.kstest(z, "norm").pvalue > 1e-3
    # the two members of a Box-Muller pair (i, i + pairs) are independent:
    # uncorrelated, and so are their squares
    pairs = 50_001
    a, b = z[:pairs - 1], z[pairs:]
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.02
    assert abs(np.corrcoef(a**2, b**2)[0, 1]) < 0.02
    assert abs(stats.kurtosis(z)) < 0.1
