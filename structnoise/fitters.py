"""StructuredNoiseFitter: learn the noise covariance from paired activations."""

from numbers import Integral, Real

import numpy as np
import torch
from scipy import linalg
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from ._param_validation import Interval, RealNotInt, StrOptions, fit_context
from ._random import seed_of
from .covariance import (
    MomentAccumulator,
    check_covariance_memory,
    shrinkage_intensity,
    shrunk_from_moments,
)

__all__ = ["StructuredNoiseFitter"]

# ----------------------------------------------------------------------
# the structures: an estimate -> the factors that draw the noise
# ----------------------------------------------------------------------
class _Estimate:
    """The shrunk covariance estimate a structure is built from.

    ``matrix`` is the (d, d) estimate, or None when only its diagonal was
    accumulated (O(d) sums) or when the deltas' top eigenpairs were computed
    without forming it (randomized low rank: ``eigen``). ``diagonal`` and
    ``trace`` always hold. ``floor`` is what shrinkage and ``reg_covar`` add
    to every eigenvalue: the eigenvalues of the deltas' own covariance,
    scaled by ``1 - shrinkage``, are the estimate's minus the floor.
    """

    def __init__(self, diagonal, *, matrix=None, floor=0.0, eigen=None):
        self.diagonal = diagonal
        self.matrix = matrix
        self.floor = float(floor)
        self.eigen = eigen  # (eigenvalues descending, eigenvectors, total signal)
        self.trace = float(np.sum(diagonal))


def _full_noise(est, rank):
    """The whole matrix: its lower Cholesky factor (``eps = z @ L.T``)."""
    cov = est.matrix
    # Cholesky with a growing jitter; a singular matrix (rank-deficient
    # deltas, unshrunk) falls back to the symmetric square root with the
    # negative rounding-error eigenvalues clamped at zero
    scale = float(np.mean(est.diagonal)) or 1.0
    for jitter in (0.0, 1e-12, 1e-10, 1e-8):
        try:
            return linalg.cholesky(cov + jitter * scale * np.eye(len(cov)), lower=True), None
        except linalg.LinAlgError:
            continue
    w, V = linalg.eigh(cov)
    return V * np.sqrt(np.clip(w, 0.0, None)), None


def _diagonal_noise(est, rank):
    """The diagonal: per-feature standard deviations (``eps = z * sd``)."""
    return np.sqrt(np.clip(est.diagonal, 0.0, None)), None


def _isotropic_noise(est, rank):
    """``trace / d`` times the identity: one standard deviation."""
    return np.sqrt(max(est.trace / len(est.diagonal), 0.0)), None


def _lowrank_noise(est, rank):
    """Top eigenvectors (``eps = z @ F.T``) plus the diagonal remainder.

    The remainder is the estimate's diagonal minus the low-rank part's, so
    the noise keeps the estimate's diagonal and trace.
    """
    d = len(est.diagonal)
    if est.eigen is not None:
        w, V, total = est.eigen
    else:
        subset = None if isinstance(rank, Real) and not isinstance(rank, Integral) \
            else [d - rank, d - 1]
        w, V = linalg.eigh(est.matrix, subset_by_index=subset)
        w, V = w[::-1], V[:, ::-1]
        total = est.trace - d * est.floor
    r = _rank_for(rank, w - est.floor, total)
    factor = V[:, :r] * np.sqrt(np.clip(w[:r], 0.0, None))
    remainder = np.clip(est.diagonal - np.einsum("ij,ij->i", factor, factor), 0.0, None)
    return factor, np.sqrt(remainder)


def _rank_for(rank, signal, total):
    """``rank`` itself, or the fewest eigenvalues keeping a fraction of the variance.

    ``signal`` holds the deltas' eigenvalues (descending, scaled by
    ``1 - shrinkage``), ``total`` their sum over all ``d``: a float rank is
    PCA's ``n_components`` in (0, 1).
    """
    if isinstance(rank, Integral):
        return int(rank)
    if total <= 0:
        return 1
    kept = np.cumsum(np.clip(signal, 0.0, None)) / total
    return int(min(np.searchsorted(kept, rank, side="left") + 1, len(signal)))


#: structure name -> (estimate, rank) -> (factor, diag_std)
_STRUCTURES = {
    "full": _full_noise,
    "diagonal": _diagonal_noise,
    "isotropic": _isotropic_noise,
    "lowrank": _lowrank_noise,
}


def _rescale_trace(factor, diag_std, trace, trace_scale, d):
    """Factors whose covariance has trace ``trace_scale * d`` (from ``trace``).

    Every structure's factor is linear in the noise standard deviation, so
    multiplying it by ``sqrt(c)`` multiplies the covariance by ``c``.
    """
    if not np.isfinite(trace) or trace <= 0:
        raise ValueError(
            f"trace_scale={trace_scale} cannot rescale a covariance of trace {trace:.3g}: "
            "the modified and clean activations do not differ. Check the source, or use "
            "trace_scale=None.")
    root = np.sqrt(trace_scale * d / trace)
    return np.asarray(factor) * root, None if diag_std is None else diag_std * root


def _noise_trace(factor, diag_std, d):
    """Trace of the covariance the factors draw."""
    factor = np.asarray(factor)
    trace = float(np.sum(factor * factor)) if factor.ndim else d * float(factor) ** 2
    return trace + (0.0 if diag_std is None else float(np.sum(diag_std * diag_std)))


def _dense_covariance(factor, diag_std, d):
    """The (d, d) covariance the factors draw."""
    factor = np.asarray(factor)
    if factor.ndim == 2:
        cov = factor @ factor.T
    else:
        cov = np.diag(np.broadcast_to(factor * factor, (d,)).astype(np.float64))
    if diag_std is not None:
        cov[np.diag_indices(d)] += diag_std * diag_std
    return cov


def _randomized_eigen(delta, rank, shrinkage, reg_covar, assume_centered, random_state):
    """Top eigenpairs of the shrunk covariance from a randomized SVD of the deltas.

    Never forms the (d, d) matrix: time O(n d k), memory O(n d) (the centred
    deltas) for k eigenpairs. A float ``rank`` doubles k until the kept
    eigenvalues hold that fraction of the variance (known exactly: the
    squared Frobenius norm of the deltas).

    Returns
    -------
    est : _Estimate
        Diagonal, floor and eigenpairs; no matrix.
    shrinkage : float
        The intensity used.
    location : ndarray of shape (d,)
        The mean delta (zeros when ``assume_centered``).
    """
    from sklearn.utils.extmath import randomized_svd

    D = np.asarray(delta)
    n, d = D.shape
    location = np.zeros(d) if assume_centered else D.mean(axis=0, dtype=np.float64)
    Dc = D - location.astype(D.dtype) if np.any(location) else D
    sq = np.einsum("ij,ij->i", Dc, Dc, dtype=np.float64)  # ||y_k||^2
    diag_S = np.einsum("ij,ij->j", Dc, Dc, dtype=np.float64) / n
    trace_S = float(sq.sum()) / n
    if isinstance(shrinkage, str):
        s = 0.0 if d == 1 else shrinkage_intensity(
            shrinkage, n, d, trace_S, _frobenius2(Dc) / (n * n), float(np.sum(sq * sq)))
    else:
        s = 0.0 if shrinkage is None else float(shrinkage)
    floor = s * trace_S / d + reg_covar
    total = (1.0 - s) * trace_S
    top = min(n, d)
    # at most min(n, d) directions: the centred deltas have no more
    k = min(int(rank), top) if isinstance(rank, Integral) else min(top, 64)
    while True:
        _, sv, Vt = randomized_svd(Dc, k, n_oversamples=10, n_iter="auto",
                                   random_state=random_state)
        signal = (1.0 - s) * sv * sv / n
        if isinstance(rank, Integral) or k >= top or \
                (total > 0 and signal[:-1].sum() >= rank * total):
            break
        k = min(2 * k, top)
    est = _Estimate((1.0 - s) * diag_S + floor, floor=floor,
                    eigen=(signal + floor, Vt.T, total))
    return est, s, location


def _frobenius2(Dc):
    """``||Dc.T @ Dc||_F**2`` without a (d, d) matrix: by the cheaper side, in blocks."""
    n, d = Dc.shape
    M, size = (Dc, n) if n <= d else (Dc.T, d)  # ||Dc Dc.T||_F = ||Dc.T Dc||_F
    block = max(1, min(size, 2**22 // max(size, 1)))
    total = 0.0
    for i in range(0, size, block):
        G = M[i:i + block] @ M.T
        total += float(np.einsum("ij,ij->", G, G, dtype=np.float64))
    return total


def _ndim(X):
    """Number of dimensions of array-like X (lists, frames, arrays)."""
    shape = getattr(X, "shape", None)
    return len(shape) if shape is not None else np.asarray(X).ndim


class StructuredNoiseFitter(TransformerMixin, BaseEstimator):
    """Learn Gaussian noise whose covariance is that of activation deltas.

    The paper's noise: the covariance of a layer's activations under a
    modified input (an attack or a corruption) minus its activations on the
    clean input, estimated with shrinkage (Ledoit-Wolf or OAS), then given a
    structure for sampling.

    Parameters
    ----------
    shrinkage : {"ledoit_wolf", "oas"}, float in [0, 1] or None, default="ledoit_wolf"
        How the empirical covariance ``S`` of the deltas is shrunk towards
        ``trace(S) / d * I``: an estimated intensity, a fixed one, or None
        (the plain sample covariance with the mean delta removed, divided by
        ``n`` (ddof=0, as :func:`sklearn.covariance.empirical_covariance`);
        the authors' ``ddof=1`` differs by the factor ``n / (n - 1)``, which
        ``trace_scale`` removes).
    structure : {"full", "diagonal", "isotropic", "lowrank"}, default="full"
        Covariance of the noise drawn: the full shrunk matrix; its diagonal;
        ``trace / d`` times the identity (the trace-matched, "fair" baseline);
        or the top eigenvectors plus the diagonal remainder (the diagonal,
        hence the total variance, is kept).
    rank : int >= 1, float in (0, 1) or None, default=None
        Eigenvectors kept by ``structure="lowrank"`` (ignored otherwise): a
        number, or, as PCA's ``n_components``, the fewest whose directions
        hold that fraction of the deltas' variance (``0.99`` keeps 99%);
        None keeps ``min(10, n_features)``. The rank used is ``rank_``.
    scale : float, default=1.0
        Noise standard-deviation multiplier, part of the learned noise:
        ``transform`` adds ``scale * eps`` with ``eps ~ N(0, covariance_)``,
        and :meth:`to_torch` carries it into the torch module. A
        :class:`~structnoise.NoisyNeuralNetClassifier` multiplies it by its
        own ``noise_scale`` (the run-time knob).
    trace_scale : float > 0 or None, default=None
        The paper's trace normalisation. None keeps the estimated size of
        the covariance. A float ``t`` rescales the noise covariance (after
        the structure is applied) so that its trace is ``t * n_features``,
        i.e. a mean per-unit variance of ``t``: full, diagonal, isotropic
        and low-rank noise fitted on the same data then have the same total
        variance, the diagonal keeps the matrix's diagonal proportions and
        isotropic noise is ``t * I``. The paper uses ``t = 2`` for attacks
        and ``t = 0.5`` for naturalistic modifications. The sampling factor
        is rescaled by ``sqrt(c)``; nothing is refactored.
    reg_covar : float >= 0, default=0.0
        Added to the diagonal of the estimated covariance before the
        structure and ``trace_scale`` are applied (the authors add ``1e-4``
        to their sample covariance; scikit-learn's ``GaussianMixture`` uses
        the same name).
    assume_centered : bool, default=False
        If True the mean delta is taken as zero; otherwise it is estimated
        (``location_``) and removed. The noise is always zero-mean.
    random_state : int, RandomState instance or None, default=None
        Seeds the noise of ``transform``/``sample`` and of :meth:`to_torch`.
    batch_size : int, default=4096
        Rows accumulated at once (memory is ``O(d**2 + batch_size * d)``).
    svd_solver : {"auto", "covariance_eigh", "randomized"}, default="auto"
        How ``structure="lowrank"`` finds its eigenvectors (the names of
        :class:`~sklearn.decomposition.PCA`). "covariance_eigh" accumulates
        the (d, d) covariance (streams with ``partial_fit``) and takes its
        eigenvectors. "randomized" takes a randomized SVD of the deltas
        (Halko et al., 2011): O(n d k) time and O(n d) memory, never a
        (d, d) matrix, but it needs all the deltas in one ``fit``, keeps at
        most ``n_samples`` eigenvectors (the deltas have no more directions)
        and approximates the eigenvectors best when the spectrum decays (on
        a flat spectrum, entries can be off by a few 1e-3 of the variance).
        "auto": randomized for ``fit`` on more than 1024 features,
        covariance_eigh otherwise.

    Attributes
    ----------
    covariance_ : ndarray of shape (n_features, n_features)
        Covariance of the noise drawn (shrunk, then structured). Stored for
        ``structure="full"``; for the others, built from the factors when
        read (they draw in O(d * rank) without it).
    shrinkage_ : float
        Shrinkage intensity used (0.0 for ``structure="isotropic"`` with an
        estimated intensity: it cannot change isotropic noise, whose variance
        is the trace over d, so it is not computed).
    location_ : ndarray of shape (n_features,)
        Mean delta (zeros when ``assume_centered``).
    factor_ : ndarray
        Sampling factor computed at fit: lower Cholesky factor (full),
        per-feature standard deviations (diagonal), a scalar standard
        deviation (isotropic) or the scaled top eigenvectors (lowrank).
    diag_std_ : ndarray of shape (n_features,) or None
        Standard deviations of the diagonal remainder (lowrank only).
    rank_ : int or None
        Eigenvectors kept (lowrank only).
    n_features_in_ : int
        Width ``d`` of the (flattened) activations.
    n_samples_seen_ : int
        Number of pairs (or delta rows) fitted.

    See Also
    --------
    structnoise.covariance.ledoit_wolf : the estimate behind ``shrinkage``.

    Notes
    -----
    ``X`` may be paired activations of shape (n, 2, d) (``X[:, 0]`` clean,
    ``X[:, 1]`` modified) or (n, 2, C, H, W) (flattened to (n, 2, C*H*W)),
    numpy or torch. A 2-D ``X`` is taken as precomputed deltas
    ``modified - clean``. Structures other than "full" and "lowrank" with a
    float or None shrinkage only keep O(d) running sums while fitting.

    Examples
    --------
    >>> import numpy as np
    >>> from structnoise import StructuredNoiseFitter
    >>> rng = np.random.RandomState(0)
    >>> clean = rng.randn(200, 4)
    >>> pairs = np.stack([clean, clean + rng.randn(200, 4) * [1, 2, 0.1, 0.1]], axis=1)
    >>> noise = StructuredNoiseFitter(random_state=0).fit(pairs)
    >>> noise.covariance_.shape
    (4, 4)
    >>> noise.transform(clean).shape
    (200, 4)
    """

    _parameter_constraints: dict = {
        "shrinkage": [StrOptions({"ledoit_wolf", "oas"}),
                      Interval(Real, 0, 1, closed="both"), None],
        "structure": [StrOptions(set(_STRUCTURES))],
        "rank": [Interval(Integral, 1, None, closed="left"),
                 Interval(RealNotInt, 0, 1, closed="neither"), None],
        "scale": [Interval(Real, 0, None, closed="left")],
        "trace_scale": [Interval(Real, 0, None, closed="neither"), None],
        "reg_covar": [Interval(Real, 0, None, closed="left")],
        "assume_centered": ["boolean"],
        "random_state": ["random_state"],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "svd_solver": [StrOptions({"auto", "covariance_eigh", "randomized"})],
    }

    def __init__(self, shrinkage="ledoit_wolf", structure="full", rank=None, scale=1.0,
                 trace_scale=None, reg_covar=0.0, assume_centered=False, random_state=None,
                 batch_size=4096, svd_solver="auto"):
        self.shrinkage = shrinkage
        self.structure = structure
        self.rank = rank
        self.scale = scale
        self.trace_scale = trace_scale
        self.reg_covar = reg_covar
        self.assume_centered = assume_centered
        self.random_state = random_state
        self.batch_size = batch_size
        self.svd_solver = svd_solver

    # ------------------------------------------------------------------
    # input handling
    # ------------------------------------------------------------------
    def _deltas(self, X, reset):
        """Validate X and return ``(deltas, n_features)``; no state change.

        Pairs become ``modified - clean``; 2-D input is deltas already.
        Torch tensors stay on their device.
        """
        if isinstance(X, torch.Tensor):
            if X.ndim < 2:
                raise ValueError(
                    f"X must be paired activations (n_samples, 2, n_features) or "
                    f"deltas (n_samples, n_features); got shape {tuple(X.shape)}.")
            if X.is_complex():
                raise TypeError(
                    f"X is a complex tensor ({X.dtype}); activations must be real "
                    "(float32 or float64): the imaginary part would be lost.")
            if not torch.is_floating_point(X):
                X = X.double()
            if not bool(torch.isfinite(X).all()):
                raise ValueError("Input X contains NaN or infinity; activations must be finite.")
            Xt = X.detach()
        elif _ndim(X) == 2:
            Xt = validate_data(self, X, reset=reset, dtype=[np.float64, np.float32],
                               ensure_min_samples=2 if reset else 1)
            d = Xt.shape[1]
            return Xt, d
        else:
            Xt = check_array(X, allow_nd=True, ensure_2d=False,
                             dtype=[np.float64, np.float32],
                             ensure_min_samples=2 if reset else 1)
        if Xt.ndim == 2:
            d = Xt.shape[1]
            delta = Xt
        else:
            if Xt.ndim < 3 or Xt.shape[1] != 2:
                raise ValueError(
                    "X must be paired activations of shape (n_samples, 2, n_features) "
                    "or (n_samples, 2, C, H, W) with axis 1 = (clean, modified), or "
                    f"2-D deltas; got shape {tuple(Xt.shape)} (axis 1 has size "
                    f"{Xt.shape[1] if Xt.ndim > 1 else 'n/a'}, expected 2).")
            flat = Xt.reshape(Xt.shape[0], 2, -1)
            d = flat.shape[2]
            delta = flat[:, 1] - flat[:, 0]
        if d < 1:
            raise ValueError(
                f"X has 0 features (shape {tuple(Xt.shape)}); activations need at least one "
                "unit: (n_samples, 2, n_features) with n_features >= 1.")
        if reset and delta.shape[0] < 2:
            raise ValueError(
                f"Found {delta.shape[0]} sample(s); at least 2 pairs are needed to "
                "estimate a covariance.")
        if not reset:
            self._check_width(d)
        return delta, d

    def _check_width(self, d):
        if d != self.n_features_in_:
            raise ValueError(
                f"X has {d} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input (activations flattened "
                "to (n_samples, n_features) or pairs (n_samples, 2, n_features)).")

    def _full_moments(self):
        """Whether fitting needs the d x d second moment."""
        return self.structure in ("full", "lowrank") or (
            self.structure == "diagonal" and isinstance(self.shrinkage, str))

    def _check_rank(self, d):
        if self.structure == "lowrank" and isinstance(self.rank, Integral) and self.rank > d:
            raise ValueError(
                f"rank={self.rank} is out of range: it must be in [1, n_features={d}] "
                "(or a fraction of the variance in (0, 1)) for structure='lowrank'.")

    def _rank(self, d):
        return min(10, d) if self.rank is None else self.rank

    def _randomized(self, d):
        """Whether ``fit`` takes the randomized low-rank path (no d x d matrix)."""
        if self.structure != "lowrank":
            return False
        return self.svd_solver == "randomized" or (self.svd_solver == "auto" and d > 1024)

    def _new_accumulator(self, d, dtype, device):
        full = self._full_moments()
        if full:
            # the accumulator, the covariance and its factor are d x d each
            check_covariance_memory(d, np.dtype(dtype).itemsize, n_matrices=3,
                                    device=device)
        else:
            # only the dense covariance_ attribute is d x d
            check_covariance_memory(d, 8, n_matrices=1)
        return MomentAccumulator(d, full=full, dtype=dtype, device=device,
                                 block_size=self.batch_size)

    # ------------------------------------------------------------------
    # fitting
    # ------------------------------------------------------------------
    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the noise covariance from paired activations.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, 2, n_features), \
                (n_samples, 2, C, H, W) or (n_samples, n_features)
            Paired activations (clean, modified), or deltas when 2-D.
        y : None
            Ignored.

        Returns
        -------
        self : StructuredNoiseFitter
            The fitted estimator.
        """
        delta, d = self._deltas(X, reset=True)
        self._check_rank(d)
        if self._randomized(d):
            if isinstance(delta, torch.Tensor):
                delta = delta.cpu().numpy()
            est, shrink, mean = _randomized_eigen(
                delta, self._rank(d), self.shrinkage, float(self.reg_covar),
                self.assume_centered, seed_of(self.random_state))
            self.__dict__.pop("_accumulator", None)  # nothing to stream on from
            self._set_noise(est, shrink, mean, d, delta.shape[0])
            return self
        # the partial_fit of the first batch: a fresh accumulator, which
        # replaces the fitted state only once the new noise is built
        return self._partial_fit(delta, d, None)

    @fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Add a batch of pairs; after all batches this equals ``fit`` on all.

        Parameters
        ----------
        X : array-like or torch.Tensor
            A batch, in any form ``fit`` accepts.
        y : None
            Ignored.

        Returns
        -------
        self : StructuredNoiseFitter
            The updated estimator.
        """
        first = not hasattr(self, "_accumulator")
        delta, d = self._deltas(X, reset=first)
        if first:
            self._check_rank(d)
        if self.structure == "lowrank" and self.svd_solver == "randomized":
            raise ValueError(
                "svd_solver='randomized' needs all the deltas at once: call fit, or use "
                "svd_solver='covariance_eigh' (or 'auto') to stream with partial_fit.")
        return self._partial_fit(delta, d, getattr(self, "_accumulator", None))

    @fit_context(prefer_skip_nested_validation=True)
    def fit_isotropic(self, n_features, variance=1.0):
        """Isotropic noise for ``n_features`` units, without data: the trace-matched baseline.

        The covariance is ``variance * I`` before trace scaling, so with a
        ``trace_scale`` t it is ``t * I`` whatever ``variance`` is: the
        paper's "Identity" condition, of the same total variance as any
        structured noise scaled to t.

        Parameters
        ----------
        n_features : int
            The layer's (flattened) width ``d``.
        variance : float, default=1.0
            Per-unit variance before trace scaling.

        Returns
        -------
        self : StructuredNoiseFitter
            Fitted, with ``n_samples_seen_ = 0``, ``shrinkage_ = 0`` and a zero
            ``location_``.

        Examples
        --------
        >>> from structnoise import StructuredNoiseFitter
        >>> noise = StructuredNoiseFitter(structure="isotropic", trace_scale=2.0)
        >>> round(float(noise.fit_isotropic(3).covariance_[0, 0]), 12)
        2.0
        """
        if self.structure != "isotropic":
            raise ValueError(f"fit_isotropic builds isotropic noise; this fitter's structure is "
                             f"{self.structure!r}. Set structure='isotropic'.")
        if not isinstance(n_features, Integral) or isinstance(n_features, bool) \
                or n_features < 1:
            raise ValueError(f"n_features must be a positive integer; got {n_features!r}.")
        if not isinstance(variance, Real) or not np.isfinite(variance) or variance <= 0:
            raise ValueError(f"variance must be a positive number; got {variance!r}.")
        d = int(n_features)
        self.__dict__.pop("_accumulator", None)  # nothing to stream on from
        self._set_noise(_Estimate(np.full(d, float(variance))), 0.0, np.zeros(d), d, 0)
        return self

    @fit_context(prefer_skip_nested_validation=True)
    def fit_covariance(self, covariance):
        """Noise of a known covariance, without data (the structure and trace scale apply).

        Parameters
        ----------
        covariance : array-like of shape (n_features, n_features)
            A symmetric positive semi-definite matrix.

        Returns
        -------
        self : StructuredNoiseFitter
            Fitted, with ``n_samples_seen_ = 0``, ``shrinkage_ = 0`` and a zero
            ``location_``.

        Examples
        --------
        >>> import numpy as np
        >>> from structnoise import StructuredNoiseFitter
        >>> cov = np.array([[2.0, 0.5], [0.5, 1.0]])
        >>> noise = StructuredNoiseFitter(random_state=0).fit_covariance(cov)
        >>> bool(np.allclose(noise.covariance_, cov))
        True
        """
        cov = check_array(covariance, dtype=np.float64, copy=True)
        d = cov.shape[0]
        if cov.shape != (d, d) or not np.allclose(cov, cov.T, atol=1e-10 * max(
                1.0, float(np.abs(cov).max()))):
            raise ValueError(f"covariance must be a symmetric (n_features, n_features) matrix; "
                             f"got shape {cov.shape}.")
        cov = (cov + cov.T) / 2
        # the draws come from a factor of the matrix: one that is not positive
        # semi-definite would be clipped there, and the fitter would report a
        # covariance it does not draw from
        lowest = float(np.linalg.eigvalsh(cov)[0]) if d else 0.0
        if lowest < -1e-10 * max(1.0, float(np.abs(cov).max())):
            raise ValueError(
                f"covariance must be positive semi-definite; its smallest eigenvalue is "
                f"{lowest:.4g}. Expected a covariance matrix (e.g. A @ A.T).")
        self._check_rank(d)
        self.__dict__.pop("_accumulator", None)  # nothing to stream on from
        self._set_noise(_Estimate(cov.diagonal().copy(), matrix=cov), 0.0, np.zeros(d), d, 0)
        return self

    def _accumulate(self, acc, delta, d):
        """Add deltas to ``acc`` (a new one when None); returns it."""
        is_t = isinstance(delta, torch.Tensor)
        device = delta.device if is_t and delta.device.type != "cpu" else None
        if acc is None:
            dtype = np.float32 if delta.dtype in (np.float32, torch.float32) else np.float64
            acc = self._new_accumulator(d, dtype, device)
        elif acc.device is not None and not is_t:
            # a batch on another device than the running sums: bring it over
            delta = torch.as_tensor(delta, device=acc.device)
        if acc.device is None and is_t:
            delta = delta.cpu()
        acc.update(delta)
        return acc

    def _partial_fit(self, delta, d, acc):
        """Stream validated deltas into ``acc`` (new when None); refit the noise from it."""
        acc = self._accumulate(acc, delta, d)
        moments, mean = acc.centred_moments(self.assume_centered)
        if isinstance(moments["moment"], torch.Tensor):
            moments = {k: (v.cpu().numpy() if isinstance(v, torch.Tensor) else v)
                       for k, v in moments.items()}
            mean = mean.cpu().numpy()
        # isotropic noise from O(d) sums: shrinking towards trace/d * I keeps
        # the trace, so an estimated intensity cannot change this noise and
        # is not computed (it needs the d x d moments)
        shrinkage = None if moments["norm4"] is None and isinstance(self.shrinkage, str) \
            else self.shrinkage
        # the moments are a fresh float64 copy: the covariance is built in them
        cov, shrink = shrunk_from_moments(moments, shrinkage, overwrite=True)
        reg = float(self.reg_covar)
        floor = shrink * float(moments["trace"]) / (moments["count"] * d) + reg
        if cov.ndim == 2:
            if reg:
                cov[np.diag_indices(d)] += reg
            est = _Estimate(cov.diagonal().copy(), matrix=cov, floor=floor)
        else:
            est = _Estimate(cov + reg, floor=floor)
        self._accumulator = acc
        self._set_noise(est, shrink, mean, d, acc.count)
        return self

    def _set_noise(self, est, shrink, mean, d, n_samples):
        """The fitted attributes: the structure's factors, trace-scaled."""
        rank = self._rank(d) if self.structure == "lowrank" else None
        factor, diag_std = _STRUCTURES[self.structure](est, rank)
        factor = np.asarray(factor, dtype=np.float64)
        cov = est.matrix if self.structure == "full" else None
        if self.trace_scale is not None:
            # the stored matrix's trace for full noise (its factor may carry a
            # rounding jitter), the factors' for the structures built from them
            trace = est.trace if cov is not None else _noise_trace(factor, diag_std, d)
            factor, diag_std = _rescale_trace(factor, diag_std, trace, float(self.trace_scale), d)
            cov = None if cov is None else cov * (float(self.trace_scale) * d / trace)
        if cov is not None:
            self._covariance = cov
        else:
            self.__dict__.pop("_covariance", None)
        self.shrinkage_ = shrink
        self.location_ = np.asarray(mean, dtype=np.float64)
        self.factor_ = factor
        self.diag_std_ = diag_std
        self.rank_ = factor.shape[1] if self.structure == "lowrank" else None
        self.n_features_in_ = d
        self.n_samples_seen_ = n_samples
        self._rng = check_random_state(self.random_state)

    @property
    def covariance_(self):
        """Covariance of the noise drawn, of shape (n_features, n_features)."""
        check_is_fitted(self, "factor_")
        if "_covariance" in self.__dict__:
            return self._covariance
        return _dense_covariance(self.factor_, self.diag_std_, self.n_features_in_)

    # ------------------------------------------------------------------
    # sampling
    # ------------------------------------------------------------------
    def _noise(self, n_samples, rng):
        """``n_samples`` draws of eps ~ N(0, covariance_) (numpy, float64)."""
        d = self.n_features_in_
        f = self.factor_
        if f.ndim == 2:
            eps = rng.standard_normal((n_samples, f.shape[1])) @ f.T
        else:
            eps = rng.standard_normal((n_samples, d)) * f
        if self.diag_std_ is not None:
            eps += rng.standard_normal((n_samples, d)) * self.diag_std_
        return eps

    def sample(self, n_samples=1):
        """Draw noise vectors ``scale * eps``, ``eps ~ N(0, covariance_)``.

        Parameters
        ----------
        n_samples : int, default=1
            Number of draws.

        Returns
        -------
        noise : ndarray of shape (n_samples, n_features)
            The draws.
        """
        check_is_fitted(self)
        if not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer; got {n_samples!r}.")
        return self.scale * self._noise(int(n_samples), self._rng)

    def transform(self, X):
        """Add structured noise to clean activations.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, n_features) \
                or pairs (n_samples, 2, ...)
            Clean activations; for pairs the clean half ``X[:, 0]`` is used.

        Returns
        -------
        X_noisy : ndarray or torch.Tensor of shape (n_samples, n_features)
            ``X + scale * eps`` with fresh noise per call (a tensor on the
            input's device for tensor input).
        """
        check_is_fitted(self)
        if isinstance(X, torch.Tensor):
            clean = X.reshape(X.shape[0], 2, -1)[:, 0] if X.ndim >= 3 else X
            if clean.ndim != 2:
                raise ValueError(f"X must be (n_samples, n_features); got {tuple(X.shape)}.")
            self._check_width(clean.shape[1])
            noise = torch.as_tensor(self._noise(clean.shape[0], self._rng),
                                    dtype=clean.dtype, device=clean.device)
            return clean + self.scale * noise
        if _ndim(X) == 2:
            clean = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        else:
            Xc = check_array(X, allow_nd=True, dtype=[np.float64, np.float32])
            if Xc.ndim < 3 or Xc.shape[1] != 2:
                raise ValueError(
                    "X must be clean activations (n_samples, n_features) or pairs "
                    f"(n_samples, 2, ...); got shape {Xc.shape}.")
            clean = Xc.reshape(Xc.shape[0], 2, -1)[:, 0]
            self._check_width(clean.shape[1])
        noise = self._noise(clean.shape[0], self._rng)
        return (clean + self.scale * noise).astype(clean.dtype, copy=False)

    def to_torch(self, device=None, dtype=torch.float32):
        """A :class:`torch.nn.Module` that adds this noise to its input.

        Parameters
        ----------
        device : str or torch.device, default=None
            Where to place the factor buffers first (they follow the input
            to whatever device it is on).
        dtype : torch.dtype, default=torch.float32
            dtype of the buffers (cast to the input's dtype when they differ).

        Returns
        -------
        module : NoiseModule
            ``module(x)`` returns ``x + module.scale * eps`` with ``x`` of
            shape (n, d) or (n, ...) flattening to d.
        """
        check_is_fitted(self)
        seed = check_random_state(self.random_state).randint(0, 2**31 - 1)
        return NoiseModule(self.factor_, self.diag_std_, n_features=self.n_features_in_,
                           scale=self.scale, seed=seed, device=device, dtype=dtype)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # every transform call draws fresh noise
        tags.non_deterministic = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


class NoiseModule(torch.nn.Module):
    """Adds zero-mean Gaussian noise ``scale * eps`` to activations.

    Built by :meth:`StructuredNoiseFitter.to_torch`. The noise is drawn on
    the input's device with a seeded :class:`torch.Generator` per device, so
    noisy forward passes are reproducible for a given seed.

    Parameters
    ----------
    factor : ndarray
        (d, k) matrix, (d,) standard deviations or a scalar standard deviation.
    diag_std : ndarray of shape (d,) or None
        Extra independent per-feature noise (low-rank remainder).
    n_features : int
        Width ``d`` of the activations.
    scale : float, default=1.0
        The fitter's ``scale`` (not a third multiplier): ``forward`` adds
        ``scale * eps``; :meth:`add_noise` takes the multiplier to use.
    seed : int, default=0
        Seed of the per-device generators.
    device : str or torch.device, default=None
        Initial device of the buffers.
    dtype : torch.dtype, default=torch.float32
        dtype of the buffers.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from structnoise import StructuredNoiseFitter
    >>> fitter = StructuredNoiseFitter(random_state=0).fit(np.random.RandomState(0).randn(50, 3))
    >>> module = fitter.to_torch()
    >>> module(torch.zeros(4, 3)).shape
    torch.Size([4, 3])
    """

    def __init__(self, factor, diag_std=None, *, n_features, scale=1.0, seed=0,
                 device=None, dtype=torch.float32):
        super().__init__()
        self.n_features = int(n_features)
        self.register_buffer("factor", torch.as_tensor(np.asarray(factor), dtype=dtype,
                                                       device=device))
        self.register_buffer(
            "diag_std", None if diag_std is None else
            torch.as_tensor(np.asarray(diag_std), dtype=dtype, device=device))
        self.scale = float(scale)
        self.seed = int(seed)
        self._generators = {}
        self._cache = {}

    def reset_generators(self):
        """Restart every device's noise stream from the seed."""
        self._generators.clear()

    def generator_state(self):
        """Where each device's noise stream stands (for a checkpoint).

        Returns
        -------
        state : dict
            Device name -> the generator's state (a byte tensor).

        Examples
        --------
        >>> import numpy as np, torch
        >>> from structnoise import NoiseModule
        >>> noise = NoiseModule(np.eye(2), n_features=2, seed=0)
        >>> _ = noise(torch.zeros(3, 2))  # the stream moves on with each draw
        >>> state = noise.generator_state()
        >>> a = noise(torch.zeros(3, 2))
        >>> noise.set_generator_state(state)
        >>> bool(torch.equal(a, noise(torch.zeros(3, 2))))
        True
        """
        return {key: g.get_state() for key, g in self._generators.items()}

    def set_generator_state(self, state):
        """Put each device's noise stream where :meth:`generator_state` found it.

        Parameters
        ----------
        state : dict
            Device name -> generator state; devices not in it restart from
            the seed.
        """
        self._generators.clear()
        for key, value in state.items():
            g = self._generator(torch.device(key))
            g.set_state(value)

    def _generator(self, device):
        key = str(device)
        if key not in self._generators:
            g = torch.Generator(device=device)
            g.manual_seed(self.seed)
            self._generators[key] = g
        return self._generators[key]

    def _buffers_on(self, device, dtype):
        """Factor, diagonal and the factor's panels on the input's device/dtype, cached.

        The key holds the buffers' version counters: a buffer written in
        place (``load_state_dict`` copies into it) is read again.
        """
        key = (str(device), dtype, self.factor.data_ptr(), self.factor._version,
               None if self.diag_std is None else self.diag_std._version)
        if key not in self._cache:
            self._cache.clear()
            same = self.factor.device == device and self.factor.dtype == dtype
            factor = self.factor if same else self.factor.to(device=device, dtype=dtype)
            diag = self.diag_std if same or self.diag_std is None else \
                self.diag_std.to(device=device, dtype=dtype)
            self._cache[key] = (factor, diag, _triangular_panels(factor))
        return self._cache[key]

    def _normals(self, n, factor, diag, g, device, dtype):
        """The standard normals of ``n`` draws, in the order the stream gives them."""
        def normal(k):
            return torch.randn(n, k, generator=g, device=device, dtype=dtype)

        z = normal(factor.shape[1] if factor.ndim == 2 else self.n_features)
        return z, (normal(self.n_features) if diag is not None else None)

    def _noise_from(self, z, z_diag, factor, diag, panels, base=None, alpha=1.0):
        """``base + alpha * eps`` from the normals (``alpha * eps`` when ``base`` is None).

        One fused kernel per part of the noise (``addmm`` for the factor,
        ``addcmul`` or ``add`` for the standard deviations): no separate
        ``eps`` tensor is scaled and added, which on a CPU costs about as
        much as drawing it. A lower-triangular factor (a Cholesky factor,
        the full structure) is applied in row panels, skipping its zero half.
        """
        if factor.ndim == 2:
            if panels is not None:
                out = torch.cat([_addmm(None if base is None else base[:, r0:r1],
                                        z[:, :r1], block, alpha)
                                 for r0, r1, block in panels], dim=1)
            else:
                out = _addmm(base, z, factor.T, alpha)
        elif factor.ndim == 1:
            if base is not None:
                out = torch.addcmul(base, z, factor, value=alpha)
            else:
                out = z.mul(factor) if alpha == 1.0 else z.mul(factor).mul_(alpha)
        else:
            out = z.mul(alpha * float(factor)) if base is None else \
                base.add(z, alpha=alpha * float(factor))
        if z_diag is not None:
            out = torch.addcmul(out, z_diag, diag, value=alpha)
        return out

    def sample(self, n, *, device=None, dtype=None):
        """Draw ``n`` noise vectors ``eps`` (without the scale)."""
        return self.sample_chunks([n], device=device, dtype=dtype)[0]

    def sample_chunks(self, sizes, *, device=None, dtype=None):
        """Draws for consecutive calls of ``sizes`` rows, the factor applied to all at once.

        The standard normals come from the stream call by call, as
        :meth:`sample` (and :meth:`add_noise`) would draw them for each size
        in turn, so the result equals those calls to rounding; the factor's
        one product over all the rows runs at a wider, faster shape (a
        training loop drawing its next batches' noise ahead: the noise does
        not depend on the network).

        Parameters
        ----------
        sizes : list of int
            Rows of each call.
        device, dtype : optional
            Where and in what type to draw (the buffers' by default).

        Returns
        -------
        draws : list of torch.Tensor
            One ``(size, n_features)`` tensor of ``eps`` per size.
        """
        device = torch.device(device) if device is not None else self.factor.device
        dtype = dtype or self.factor.dtype
        factor, diag, panels = self._buffers_on(device, dtype)
        g = self._generator(device)
        parts = [self._normals(int(n), factor, diag, g, device, dtype) for n in sizes]
        z = torch.cat([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
        z_diag = None if diag is None else \
            (torch.cat([p[1] for p in parts]) if len(parts) > 1 else parts[0][1])
        eps = self._noise_from(z, z_diag, factor, diag, panels)
        return list(torch.split(eps, [int(n) for n in sizes]))

    def add_noise(self, x, scale=None):
        """``x + scale * eps`` for activations ``x`` of any shape flattening to d.

        Parameters
        ----------
        x : torch.Tensor of shape (n, ...)
            Activations; the noise is drawn on their device and dtype.
        scale : float, default=None
            Multiplier of the noise (default: this module's ``scale``).

        Returns
        -------
        noisy : torch.Tensor
            Same shape, device and dtype as ``x``.
        """
        scale = self.scale if scale is None else float(scale)
        flat = x.reshape(x.shape[0], -1)
        n, d = flat.shape
        if d != self.n_features:
            raise ValueError(
                f"Noise of width {self.n_features} cannot be added to activations of shape "
                f"{tuple(x.shape)} ({d} features per sample).")
        if scale == 0:
            return x
        factor, diag, panels = self._buffers_on(x.device, x.dtype)
        z, z_diag = self._normals(n, factor, diag, self._generator(x.device), x.device, x.dtype)
        return self._noise_from(z, z_diag, factor, diag, panels, base=flat,
                                alpha=scale).reshape(x.shape)

    def forward(self, x):
        """Return ``x + scale * eps`` (same shape, device and dtype as ``x``)."""
        return self.add_noise(x)

    def extra_repr(self):
        return f"n_features={self.n_features}, scale={self.scale}, seed={self.seed}"


#: a lower-triangular factor at least this wide is applied in row panels
#: (:func:`_triangular_panels`); narrower ones in one product
_PANEL_MIN_WIDTH = 512
#: row panels of a triangular factor. Measured on 2 cores (d = 3136, float32):
#: z @ L.T for 1024 rows 92 ms in one product, 49 ms in 8 panels (55 ms in 4);
#: for 64 rows 8.7 and 5.3 ms
_N_PANELS = 8


def _triangular_panels(factor):
    """Row panels ``[(r0, r1, L[r0:r1, :r1].T), ...]`` of a lower-triangular factor, or None.

    ``z @ L.T`` restricted to the columns ``r0:r1`` only reads ``z[:, :r1]``:
    the products skip the factor's zero upper half (44% of its operations
    at 8 panels). None for any other factor, or one too narrow to gain.
    """
    if factor.ndim != 2 or factor.shape[0] != factor.shape[1] or \
            factor.shape[0] < _PANEL_MIN_WIDTH or bool(torch.triu(factor, 1).any()):
        return None
    d = factor.shape[0]
    edges = [round(d * i / _N_PANELS) for i in range(_N_PANELS + 1)]
    return [(r0, r1, factor[r0:r1, :r1].T.contiguous())
            for r0, r1 in zip(edges[:-1], edges[1:], strict=True)]


def _addmm(base, a, b, alpha):
    """``base + alpha * a @ b`` (``alpha * a @ b`` when ``base`` is None), one kernel."""
    if base is None:
        return torch.mm(a, b).mul_(alpha) if alpha != 1.0 else torch.mm(a, b)
    return torch.addmm(base, a, b, alpha=alpha)
