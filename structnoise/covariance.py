"""Shrinkage covariance estimation: Ledoit-Wolf and OAS, batch and streaming.

This module is the functional core of structnoise, written the way
:mod:`sklearn.covariance` is: plain functions do the maths
(:func:`ledoit_wolf`, :func:`oas`), and :class:`MomentAccumulator` holds the
running sums they need so that the same numbers come out of one pass over
a stream of batches.

Why it is faster than scikit-learn
----------------------------------
Ledoit-Wolf needs the second-moment matrix ``S = Y.T @ Y / n`` of the centred
data ``Y`` and two scalars: ``sum_k ||y_k||**4`` (scikit-learn forms it as the
sum of ``(Y**2).T @ (Y**2)``, a second d x d GEMM) and ``||S||_F**2``. The
first scalar only needs the row norms, so the whole estimate costs one
symmetric rank-k update (BLAS ``syrk``, half a GEMM) plus O(n*d) work. The
data are processed in row blocks, so no more than ``O(d**2 + batch*d)`` memory
is used whatever ``n`` is.

Streaming and merging
---------------------
The accumulator keeps its sums about a fixed origin (the mean of its first
batch, which keeps cancellation small) and can move them exactly to any
other origin (:meth:`MomentAccumulator.shifted_moments`). Two accumulators
therefore merge exactly, which is what parallel or distributed fitting needs.
"""

import os

import numpy as np
import torch

__all__ = [
    "CovarianceMemoryError",
    "MomentAccumulator",
    "ledoit_wolf",
    "oas",
    "shrinkage_intensity",
    "shrunk_from_moments",
    "check_covariance_memory",
]

#: rows per block: large enough for BLAS efficiency, small enough that the
#: centred copy of a block stays far below the d x d matrix for large d.
_DEFAULT_BLOCK = 4096


class CovarianceMemoryError(MemoryError, ValueError):
    """A d x d covariance matrix would not fit in the available memory.

    It subclasses both :class:`MemoryError` and :class:`ValueError`, so code
    that validates input with ``except ValueError`` catches it too.

    Examples
    --------
    >>> from structnoise.covariance import CovarianceMemoryError, check_covariance_memory
    >>> try:
    ...     check_covariance_memory(10**7)
    ... except ValueError as exc:
    ...     print(type(exc).__name__)
    CovarianceMemoryError
    """


# --------------------------------------------------------------------------
# memory guard
# --------------------------------------------------------------------------
def _available_bytes(device=None):
    """Memory that can still be allocated on ``device`` (host RAM for CPU)."""
    override = os.environ.get("STRUCTNOISE_MAX_MEMORY_BYTES")
    if override:
        return int(override)
    if device is not None and torch.device(device).type == "cuda":
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - exotic OS
        return 1 << 62


def check_covariance_memory(n_features, itemsize=8, *, n_matrices=1, device=None):
    """Raise before allocating d x d matrices that cannot fit in memory.

    Parameters
    ----------
    n_features : int
        Width ``d`` of the data.
    itemsize : int, default=8
        Bytes per element of the matrices.
    n_matrices : int, default=1
        How many d x d matrices the computation holds at once.
    device : str or torch.device, default=None
        Where they are allocated (None: host memory).

    Returns
    -------
    nbytes : int
        The estimated number of bytes.

    Raises
    ------
    CovarianceMemoryError
        If the estimate exceeds the memory available, with a message that
        suggests ``structure="diagonal"`` or ``structure="isotropic"``.

    Examples
    --------
    >>> from structnoise.covariance import check_covariance_memory
    >>> check_covariance_memory(100)
    80000
    """
    nbytes = int(n_matrices) * int(n_features) ** 2 * int(itemsize)
    available = _available_bytes(device)
    if nbytes > available:
        raise CovarianceMemoryError(
            f"A full covariance of {n_features} features needs about "
            f"{nbytes / 2**30:.1f} GiB ({n_matrices} matrices of "
            f"{n_features}x{n_features}), but only {available / 2**30:.1f} GiB "
            "is available. Use structure='diagonal' with shrinkage=None or a float "
            "(per-feature variances, O(d) memory while fitting) or "
            "structure='isotropic', or reduce the number of features (pool the "
            "activation maps or pick a narrower layer)."
        )
    return nbytes


# --------------------------------------------------------------------------
# array helpers: numpy on the host (BLAS syrk), torch on accelerators
# --------------------------------------------------------------------------
def _is_torch(X):
    return isinstance(X, torch.Tensor)


def _as_host_numpy(X):
    """A zero-copy numpy view of a CPU tensor (numpy arrays pass through)."""
    if _is_torch(X):
        return X.detach().resolve_conj().resolve_neg().numpy()
    return X


class _HostOps:
    """The array operations of :class:`MomentAccumulator` on host memory (numpy).

    ``np.dot(Y.T, Y)`` is recognised by numpy as a symmetric product and runs
    as one BLAS ``syrk`` (half a GEMM), then mirrors the triangle.
    """

    device = None

    @staticmethod
    def array(X):
        return _as_host_numpy(X)

    @staticmethod
    def zeros(shape, dtype):
        return np.zeros(shape, dtype=dtype)

    @staticmethod
    def empty(shape, dtype):
        return np.empty(shape, dtype=dtype)

    @staticmethod
    def vector64(v):
        return np.asarray(v, dtype=np.float64)

    @staticmethod
    def mean64(X):
        return X.mean(axis=0, dtype=np.float64)

    @staticmethod
    def cast(A, dtype):
        return A.astype(dtype, copy=False)

    @staticmethod
    def copy64(A):
        return A.astype(np.float64, copy=True)

    @staticmethod
    def contiguous(X):
        return X.flags.c_contiguous

    @staticmethod
    def subtract(A, b, out):
        return np.subtract(A, b, out=out)

    @staticmethod
    def add_gram(M, Y):
        M += np.dot(Y.T, Y)

    @staticmethod
    def row_sq(Y):
        return np.einsum("ij,ij->i", Y, Y, dtype=np.float64)

    @staticmethod
    def col_sq(Y):
        return np.einsum("ij,ij->j", Y, Y, dtype=np.float64)

    @staticmethod
    def col_sum(Y):
        return Y.sum(axis=0, dtype=np.float64)

    @staticmethod
    def vec_mat(v, Y):
        # in the data's type: upcasting a float32 block would copy it
        return v.astype(Y.dtype) @ Y

    @staticmethod
    def outer(a, b):
        return np.outer(a, b)


class _TorchOps:
    """The same operations with torch on an accelerator (``addmm_`` for the Gram)."""

    def __init__(self, device):
        self.device = device

    def array(self, X):
        return torch.as_tensor(X, device=self.device)

    def zeros(self, shape, dtype):
        return torch.zeros(shape, dtype=_torch_dtype(dtype), device=self.device)

    def empty(self, shape, dtype):
        return torch.empty(shape, dtype=_torch_dtype(dtype), device=self.device)

    def vector64(self, v):
        return torch.as_tensor(v, dtype=torch.float64, device=self.device)

    @staticmethod
    def mean64(X):
        return torch.mean(X, 0, dtype=torch.float64)

    @staticmethod
    def cast(A, dtype):
        return A.to(_torch_dtype(dtype))

    @staticmethod
    def copy64(A):
        return A.double().clone()

    @staticmethod
    def contiguous(X):
        return X.is_contiguous()

    @staticmethod
    def subtract(A, b, out):
        return torch.sub(A, b, out=out)

    @staticmethod
    def add_gram(M, Y):
        M.addmm_(Y.T, Y)

    @staticmethod
    def row_sq(Y):
        Y64 = Y.double()
        return (Y64 * Y64).sum(1)

    @staticmethod
    def col_sq(Y):
        Y64 = Y.double()
        return (Y64 * Y64).sum(0)

    @staticmethod
    def col_sum(Y):
        return Y.sum(0, dtype=torch.float64)

    @staticmethod
    def vec_mat(v, Y):
        return v @ Y.double()

    @staticmethod
    def outer(a, b):
        return torch.outer(a, b)


def _torch_dtype(dtype):
    if isinstance(dtype, torch.dtype):
        return dtype
    return torch.float64 if np.dtype(dtype) == np.float64 else torch.float32


def _np_dtype(dtype):
    """numpy's name for a numpy or torch float dtype."""
    if isinstance(dtype, torch.dtype):
        return np.dtype(np.float64 if dtype == torch.float64 else np.float32)
    return np.dtype(dtype)


class MomentAccumulator:
    """Running sums for Ledoit-Wolf and OAS: exact, one pass, mergeable.

    The sums are kept about an origin ``c``: with ``y = x - c`` the
    accumulator holds ``n``, ``sum y``, ``sum y y^T`` (or only its diagonal),
    ``sum ||y||^4`` and ``sum ||y||^2 y``. That is everything Ledoit-Wolf and
    OAS need, and enough to move the sums exactly to any other origin.

    One code path for every device: the few array operations it needs come
    from a host (numpy, BLAS ``syrk``) or a torch (accelerator) namespace.

    Parameters
    ----------
    n_features : int
        Width of the rows.
    full : bool, default=True
        Keep the full second-moment matrix (d x d). With False only its
        diagonal is kept (O(d) memory): enough for diagonal and isotropic
        covariances, not for the Ledoit-Wolf or OAS shrinkage intensity.
    dtype : numpy dtype, default=np.float64
        Type of the second-moment matrix (float32 stays float32); the
        scalars and vectors are always accumulated in float64.
    device : torch.device or None, default=None
        None or a CPU device: host memory, BLAS ``syrk``. A CUDA device:
        torch on that device.
    block_size : int, default=4096
        Rows processed at once.

    Examples
    --------
    >>> import numpy as np
    >>> from structnoise.covariance import MomentAccumulator, ledoit_wolf
    >>> X = np.random.RandomState(0).randn(100, 5)
    >>> acc = MomentAccumulator(5)
    >>> for batch in np.array_split(X, 4):
    ...     _ = acc.update(batch)
    >>> cov, s = acc.ledoit_wolf()
    >>> np.allclose(cov, ledoit_wolf(X)[0])
    True
    """

    def __init__(self, n_features, *, full=True, dtype=np.float64, device=None,
                 block_size=_DEFAULT_BLOCK):
        self.n_features = int(n_features)
        self.full = bool(full)
        self.block_size = int(block_size)
        device = None if device is None else torch.device(device)
        self.device = device if device is not None and device.type != "cpu" else None
        self._ops = _HostOps() if self.device is None else _TorchOps(self.device)
        self.dtype = _np_dtype(dtype)
        d = self.n_features
        if self.full:
            check_covariance_memory(d, self.dtype.itemsize, device=self.device)
        self.count = 0
        self.origin = None  # float64 vector, set by the first update
        self.norm4 = 0.0  # sum ||y||^4
        self.moment = self._ops.zeros((d, d), self.dtype) if self.full else \
            self._ops.zeros(d, np.float64)
        self.sum = self._ops.zeros(d, np.float64)
        self.norm2_y = self._ops.zeros(d, np.float64)  # sum ||y||^2 y

    # -- accumulation -----------------------------------------------------
    def update(self, X, origin=None):
        """Add the rows of ``X`` (n, d) to the sums.

        Parameters
        ----------
        X : ndarray or torch.Tensor of shape (n_samples, n_features)
            Rows to add; a CPU tensor is read without a copy.
        origin : array-like of shape (n_features,), default=None
            Origin of the sums, only used by the first update (default: the
            mean of that first batch).

        Returns
        -------
        self : MomentAccumulator
        """
        if X.shape[0] == 0:
            return self
        ops = self._ops
        X = ops.array(X)
        if self.origin is None:
            self.origin = ops.vector64(origin) if origin is not None else ops.mean64(X)
        c = ops.cast(self.origin, X.dtype)
        centre = bool((c != 0).any())
        # uncentred contiguous data needs no copy: one product over all rows
        # is faster than several (each re-reads and re-writes the d x d
        # output); blocks are only needed to bound the centred copies, made
        # in one reused buffer (a fresh allocation per block costs more in
        # page faults than the subtraction itself)
        step = self.block_size if centre or not ops.contiguous(X) else X.shape[0]
        buf = ops.empty((min(step, X.shape[0]), X.shape[1]), X.dtype) if centre else None
        with torch.no_grad():
            for start in range(0, X.shape[0], step):
                block = X[start:start + step]
                Y = ops.subtract(block, c, out=buf[:block.shape[0]]) if centre else block
                if self.full:
                    ops.add_gram(self.moment, ops.cast(Y, self.moment.dtype))
                else:
                    self.moment += ops.col_sq(Y)
                norm2 = ops.row_sq(Y)
                self.norm4 += float(norm2 @ norm2)
                self.norm2_y += ops.vec_mat(norm2, Y)
                self.sum += ops.col_sum(Y)
        self.count += X.shape[0]
        return self

    def shifted_moments(self, new_origin):
        """The sums about ``new_origin`` (exact algebra, no pass over data).

        Parameters
        ----------
        new_origin : array-like of shape (n_features,)

        Returns
        -------
        moments : dict
            ``count``, ``sum``, ``moment`` (float64, full symmetric or
            diagonal), ``norm4`` (None without the full matrix) and
            ``trace``.
        """
        ops = self._ops
        n = self.count
        # z = x - new_origin = y + t with t = origin - new_origin
        t = self.origin - ops.vector64(new_origin)
        s = self.sum
        T = float((t * t).sum())
        ts = float((t * s).sum())
        M = ops.copy64(self.moment)
        if self.full:
            trace = float(M.diagonal().sum())
            Mt = M @ t
            norm4 = _shifted_norm4(self.norm4, float((t * Mt).sum()),
                                   float((t * self.norm2_y).sum()), T, trace, ts, n)
            # sum ||z||^2 z = sum (||y||^2 + 2 y.t + T)(y + t)
            norm2_y = (self.norm2_y + trace * t + 2.0 * Mt + 2.0 * ts * t + T * s
                       + n * T * t)
            if T:  # sum z z^T = M + t s^T + s t^T + n t t^T
                half = s + 0.5 * n * t
                M += ops.outer(t, half)
                M += ops.outer(half, t)
        else:
            M += 2.0 * t * s + n * t * t
            norm4 = norm2_y = None
        return {"count": n, "sum": s + n * t, "moment": M, "norm4": norm4,
                "norm2_y": norm2_y,
                "trace": float(M.diagonal().sum()) if self.full else float(M.sum())}

    def merge(self, other):
        """Add the sums of another accumulator (exact, any origins).

        Parameters
        ----------
        other : MomentAccumulator
            Same ``n_features`` and ``full``.

        Returns
        -------
        self : MomentAccumulator
        """
        if other.n_features != self.n_features or other.full != self.full:
            raise ValueError(
                "Cannot merge accumulators of different shapes: "
                f"(n_features={self.n_features}, full={self.full}) and "
                f"(n_features={other.n_features}, full={other.full})."
            )
        if other.count == 0:
            return self
        if self.count == 0:
            self.__dict__.update({k: (v.clone() if _is_torch(v) else
                                      v.copy() if isinstance(v, np.ndarray) else v)
                                  for k, v in other.__dict__.items()})
            return self
        # move the other's sums onto our origin, then add
        o = other.shifted_moments(self.origin)
        if self.full:
            self.norm2_y = self.norm2_y + o["norm2_y"]
            self.norm4 += o["norm4"]
        self.moment += self._ops.cast(o["moment"], self.moment.dtype)
        self.sum = self.sum + o["sum"]
        self.count += other.count
        return self

    # -- estimates --------------------------------------------------------
    def centred_moments(self, assume_centered=False):
        """Sums about the mean (or about zero when ``assume_centered``)."""
        if self.count == 0:
            raise ValueError("The accumulator has seen no samples.")
        if assume_centered:
            target = self._ops.zeros(self.n_features, np.float64)
        else:
            target = self.origin + self.sum / self.count
        return self.shifted_moments(target), target

    def ledoit_wolf(self, assume_centered=False):
        """Ledoit-Wolf estimate from the sums: ``(covariance, shrinkage)``."""
        m, _ = self.centred_moments(assume_centered)
        return shrunk_from_moments(m, "ledoit_wolf")

    def oas(self, assume_centered=False):
        """OAS estimate from the sums: ``(covariance, shrinkage)``."""
        m, _ = self.centred_moments(assume_centered)
        return shrunk_from_moments(m, "oas")


def _shifted_norm4(norm4, tMt, tv, T, trace, ts, n):
    """``sum ||y + t||^4`` from the sums about the old origin.

    With ``a_k = ||y_k||^2``: ``sum (a_k + 2 y_k.t + T)^2`` expands into
    ``norm4 + 4 t'Mt + n T^2 + 4 t.v + 2 T trace + 4 T t.s``, where ``M`` is
    the second moment, ``v = sum a_k y_k``, ``s = sum y_k`` and ``T = ||t||^2``.
    """
    return norm4 + 4.0 * tMt + n * T * T + 4.0 * tv + 2.0 * T * trace + 4.0 * T * ts


def shrinkage_intensity(method, n, d, trace, frob2, norm4):
    """Ledoit-Wolf / OAS shrinkage intensity from moments, as scikit-learn computes it.

    Parameters
    ----------
    method : {"ledoit_wolf", "oas"}
        The estimator.
    n : int
        Number of samples.
    d : int
        Number of features.
    trace : float
        Trace of the empirical covariance ``S``.
    frob2 : float
        Squared Frobenius norm of ``S``.
    norm4 : float
        ``sum_k ||y_k||**4`` of the centred rows (Ledoit-Wolf only).

    Returns
    -------
    shrinkage : float
        The intensity in [0, 1].

    Examples
    --------
    >>> from structnoise.covariance import shrinkage_intensity
    >>> shrinkage_intensity("oas", n=10, d=2, trace=2.0, frob2=2.0, norm4=0.0)
    1.0
    """
    mu = trace / d
    if method == "ledoit_wolf":
        beta = (norm4 / n - frob2) / (d * n)
        delta = (frob2 - 2.0 * mu * trace + d * mu * mu) / d
        beta = min(beta, delta)
        return 0.0 if beta == 0 else beta / delta
    if method == "oas":
        alpha = frob2 / d**2
        num = alpha + mu * mu
        den = (n + 1.0) * (alpha - mu * mu / d)
        return 1.0 if den == 0 else min(num / den, 1.0)
    raise ValueError(f"Unknown shrinkage method {method!r}; expected 'ledoit_wolf' or 'oas'.")


def shrunk_from_moments(moments, shrinkage, *, overwrite=False):
    """Shrunk covariance from centred sums.

    Parameters
    ----------
    moments : dict
        As returned by :meth:`MomentAccumulator.centred_moments`: ``count``,
        ``moment`` (the centred second moment, full or diagonal), ``trace``
        and ``norm4``.
    shrinkage : {"ledoit_wolf", "oas"}, float in [0, 1] or None
        The intensity, or how to estimate it. None: the empirical estimate.
    overwrite : bool, default=False
        Build the covariance in ``moments["moment"]`` itself (no d x d copy);
        the moments are then spent.

    Returns
    -------
    covariance : ndarray or torch.Tensor
        ``(1 - s) * S + s * mu * I`` with ``mu = trace(S) / d``: (d, d) for
        full moments, the (d,) diagonal otherwise.
    shrinkage : float
        The intensity ``s`` used.

    Examples
    --------
    >>> import numpy as np
    >>> from structnoise.covariance import MomentAccumulator, shrunk_from_moments
    >>> acc = MomentAccumulator(3).update(np.random.RandomState(0).randn(50, 3))
    >>> m, _ = acc.centred_moments()
    >>> cov, s = shrunk_from_moments(m, 0.5)
    >>> s
    0.5
    """
    n = moments["count"]
    M = moments["moment"]
    full = M.ndim == 2
    d = M.shape[0]
    trace = moments["trace"] / n
    if isinstance(shrinkage, str):
        if d == 1:
            s = 0.0  # one feature: scikit-learn returns the variance, unshrunk
        else:
            if not full or moments["norm4"] is None:
                raise ValueError(
                    f"shrinkage={shrinkage!r} needs the full second-moment matrix; "
                    "use a float or None for diagonal moments."
                )
            flat = M.reshape(-1)
            frob2 = float(flat @ flat) / (n * n)  # ||S||_F^2 without a d x d temporary
            s = shrinkage_intensity(shrinkage, n, d, trace, frob2, moments["norm4"])
    else:
        s = 0.0 if shrinkage is None else float(shrinkage)
    mu = trace / d
    cov = M if overwrite else (M.clone() if _is_torch(M) else M.copy())
    cov *= (1.0 - s) / n
    if s:
        if full:
            cov.diagonal().__iadd__(s * mu) if _is_torch(cov) else \
                np.fill_diagonal(cov, cov.diagonal() + s * mu)
        else:
            cov += s * mu
    return cov, float(s)


def _needs_centring(X, mean, block_size):
    """Whether raw (uncentred) sums would lose accuracy for this data.

    Accumulating about zero and subtracting ``n * mean mean^T`` afterwards
    skips a pass that copies every block, but loses about
    ``eps * (mean_i / std_i) ** 2`` of relative accuracy per entry (and the
    square of the pooled ratio in ``sum ||y||**4``). For float64 data whose
    mean is within 100 standard deviations per feature (10 pooled) this is
    below 1e-12, far inside the 1e-6 agreement with scikit-learn; for
    float32 the bound is one standard deviation (1/4 pooled). Otherwise the
    blocks are centred before the update. The standard deviations are
    estimated on the first rows.
    """
    if not np.any(mean):
        return False
    # float32: the raw sums lose eps32 * ratio, below float32's own
    # accumulation error only for means within one standard deviation
    max_ratio, max_pooled = (1e4, 1e2) if X.dtype == np.float64 else (1.0, 0.25)
    head = X[:min(block_size, 1024)]
    var = head.var(axis=0, dtype=np.float64)
    m2 = mean * mean
    if np.any((var == 0) & (m2 > 0)):
        return True
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(var > 0, m2 / var, 0.0)
    return bool(ratio.max() > max_ratio or m2.sum() > max_pooled * var.sum())


def _estimate_host(X, assume_centered, method, block_size):
    """Batch estimate on host memory: one symmetric product (``syrk``) pass.

    The sums are taken about zero when that loses no accuracy (no centred
    copy of the data is made), about the mean otherwise; the accumulator's
    exact change of origin and :func:`shrunk_from_moments` do the rest, as
    for a stream.
    """
    n, d = X.shape
    mean = np.zeros(d) if assume_centered else X.mean(axis=0, dtype=np.float64)
    origin = mean if _needs_centring(X, mean, block_size) else np.zeros(d)
    acc = MomentAccumulator(d, dtype=X.dtype, block_size=block_size).update(X, origin=origin)
    moments, _ = acc.centred_moments(assume_centered)
    del acc  # its d x d sums, now copied into the moments
    cov, s = shrunk_from_moments(moments, method, overwrite=True)
    return cov.astype(X.dtype, copy=False), s


def _check_input(X):
    """scikit-learn's checks on the data (same inputs rejected, clear errors)."""
    if _is_torch(X):
        if X.ndim != 2:
            raise ValueError(
                f"Expected 2D array (n_samples, n_features), got a tensor of shape "
                f"{tuple(X.shape)} instead. Reshape your data with X.reshape(-1, 1) for a "
                "single feature or X.reshape(1, -1) for a single sample.")
        if X.is_complex():
            raise ValueError("Complex data not supported: X must be real (float32/float64).")
        if X.shape[0] < 1:
            raise ValueError(f"Found array with 0 sample(s) (shape={tuple(X.shape)}) while a "
                             "minimum of 1 is required.")
        if X.dtype == torch.bool or not (torch.is_floating_point(X) or X.dtype in (
                torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)):
            raise ValueError(f"X must hold real numbers; got dtype {X.dtype}.")
        if torch.is_floating_point(X) and not bool(torch.isfinite(X).all()):
            raise ValueError("Input X contains NaN or infinity.")
        return X
    from sklearn.utils import check_array

    return check_array(X, dtype=[np.float64, np.float32], ensure_min_samples=1,
                       input_name="X")


def _estimate(X, assume_centered, method, block_size=None):
    """Shared body of :func:`ledoit_wolf` and :func:`oas`."""
    if block_size is None:
        block_size = _DEFAULT_BLOCK
    elif not isinstance(block_size, (int, np.integer)) or isinstance(block_size, bool) \
            or block_size < 1:
        raise ValueError(f"block_size must be a positive integer; got {block_size!r}.")
    X = _check_input(X)
    is_torch = _is_torch(X)
    if is_torch:
        if X.dtype not in (torch.float32, torch.float64):
            X = X.double()
        if X.device.type == "cpu":
            cov, s = _estimate_host(_as_host_numpy(X), assume_centered, method, block_size)
            return torch.from_numpy(cov), s
        acc = MomentAccumulator(X.shape[1], dtype=X.dtype, device=X.device,
                                block_size=block_size)
        acc.update(X, origin=None if not assume_centered else
                   torch.zeros(X.shape[1], dtype=torch.float64, device=X.device))
        moments, _ = acc.centred_moments(assume_centered)
        cov, s = shrunk_from_moments(moments, method, overwrite=True)
        return cov.to(X.dtype), s
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    return _estimate_host(X, assume_centered, method, block_size)


def ledoit_wolf(X, *, assume_centered=False, block_size=None):
    """Ledoit-Wolf shrunk covariance, equal to :func:`sklearn.covariance.ledoit_wolf`.

    One ``syrk`` over row blocks plus O(n*d) sums: several times faster than
    scikit-learn, with ``O(d**2 + block*d)`` memory.

    Parameters
    ----------
    X : ndarray or torch.Tensor of shape (n_samples, n_features)
        Data. Tensors may live on any device; the result is on the same
        device with the same dtype. float32 input is accumulated in float32
        (the d x d matrix) and float64 (every scalar).
    assume_centered : bool, default=False
        If True, the data are not centred (the mean is taken as zero).
    block_size : int, default=None
        Rows accumulated at once (scikit-learn's keyword, a memory setting
        that does not change the result); None uses our default.

    Returns
    -------
    covariance : ndarray or torch.Tensor of shape (n_features, n_features)
        ``(1 - shrinkage) * S + shrinkage * trace(S) / d * I``.
    shrinkage : float
        The Ledoit-Wolf intensity in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from structnoise.covariance import ledoit_wolf
    >>> X = np.random.RandomState(0).multivariate_normal([0, 0], [[.4, .2], [.2, .8]], 50)
    >>> cov, shrinkage = ledoit_wolf(X)
    >>> round(shrinkage, 2)
    0.23
    """
    return _estimate(X, assume_centered, "ledoit_wolf", block_size)


def oas(X, *, assume_centered=False, block_size=None):
    """Oracle Approximating Shrinkage, equal to :func:`sklearn.covariance.oas`.

    Parameters
    ----------
    X : ndarray or torch.Tensor of shape (n_samples, n_features)
        Data (see :func:`ledoit_wolf`).
    assume_centered : bool, default=False
        If True, the data are not centred.
    block_size : int, default=None
        Rows accumulated at once (memory only; see :func:`ledoit_wolf`).

    Returns
    -------
    covariance : ndarray or torch.Tensor of shape (n_features, n_features)
        The shrunk covariance.
    shrinkage : float
        The OAS intensity in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from structnoise.covariance import oas
    >>> X = np.random.RandomState(0).multivariate_normal([0, 0], [[.4, .2], [.2, .8]], 50)
    >>> cov, shrinkage = oas(X)
    >>> cov.shape
    (2, 2)
    """
    return _estimate(X, assume_centered, "oas", block_size)
