"""Running torch modules on images: batches, progress, draws of a noisy module, logits.

Private to structnoise: the sources, the nets, the scorers and the
evaluation all run modules the same way through these helpers.
"""

import contextlib
import itertools
import sys

import numpy as np
import torch
from tqdm.auto import tqdm

from ._validation import check_logits
from .splitting import SharedFront

__all__ = ["resolve_module", "module_device", "module_dtype", "attack_mode", "progress",
           "batches", "attack_labels", "stacked_draws", "predict_logits", "predict_labels"]


def resolve_module(model):
    """The torch module behind ``model`` (a module or a fitted skorch net).

    A net that predicts with an ensemble of noise draws exposes it as
    ``prediction_module_``: attacks target what the net predicts with.
    """
    if isinstance(model, torch.nn.Module):
        return model
    module = getattr(model, "prediction_module_", None)
    if not isinstance(module, torch.nn.Module):
        module = getattr(model, "module_", None)
    if isinstance(module, torch.nn.Module):
        return module
    if hasattr(model, "module") and hasattr(model, "initialize"):
        raise ValueError(
            f"{type(model).__name__} is not initialized: fit it (or call initialize()) "
            "before generating attacks against it.")
    raise TypeError(
        "model must be a torch.nn.Module or a fitted skorch net; got "
        f"{type(model).__name__}.")


def module_device(module):
    """Device of the module's first parameter or buffer (CPU if it has none)."""
    first = next(itertools.chain(module.parameters(), module.buffers()), None)
    return torch.device("cpu") if first is None else first.device


def module_dtype(module):
    """Floating dtype of the module's parameters (float32 if it has none)."""
    return next((p.dtype for p in module.parameters()), torch.float32)


@contextlib.contextmanager
def attack_mode(module):
    """Eval mode and frozen parameters during an attack; restored after.

    Freezing keeps the attack's backward passes from accumulating gradients
    in the network's parameters.
    """
    # each submodule's own mode, restored as it was (a network in eval mode
    # with one submodule training stays so); nothing to switch, and no
    # per-module attribute writes, for the usual network already in eval mode
    modes = [(m, m.training) for m in module.modules()]
    training = any(mode for _, mode in modes)
    if training:
        module.eval()
    trainable = [p for p in module.parameters() if p.requires_grad]
    for p in trainable:
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for p in trainable:
            p.requires_grad_(True)
        if training:
            for m, mode in modes:
                m.training = mode


def progress(iterable, *, total=None, verbose=1, desc=None):
    """tqdm progress, off when ``verbose=0`` or stderr is not a terminal."""
    disable = not verbose or not sys.stderr.isatty()
    return tqdm(iterable, total=total, desc=desc, disable=disable, leave=False)


def batches(n_samples, batch_size):
    """Slices covering ``range(n_samples)`` in steps of ``batch_size``."""
    return [slice(i, min(i + batch_size, n_samples)) for i in range(0, n_samples, batch_size)]


def attack_labels(module, X, y, *, eot_samples, batch_size, device, dtype):
    """``(labels, n_classes)`` for an attack: ``y`` checked against the outputs, or predictions.

    With ``y=None`` the labels are the model's predictions (mean logits over
    ``eot_samples`` draws), so no true label leaks into the attack.
    """
    with torch.no_grad():
        n_classes = check_logits(module(X[:1].to(device, dtype)), 1).shape[1]
    if y is None:
        return predict_logits(module, X.to(dtype), batch_size=batch_size,
                              eot_samples=eot_samples, device=device).argmax(1), n_classes
    if int(y.min()) < 0 or int(y.max()) >= n_classes:
        raise ValueError(
            f"y holds labels outside [0, {n_classes - 1}] for a model with {n_classes} "
            "outputs.")
    return y, n_classes


#: rows per stacked pass on a CPU. Measured on 2 cores (PaperCNN, input
#: gradient of LinfPGD with isotropic noise at its 3136-wide site, batch 64):
#: one pass over 32 stacked draws (2048 rows) costs 37x one draw, passes of
#: 256 rows 21x; beyond a few hundred rows the conv activations leave the
#: cache and the cost per row grows. A GPU gains from the widest pass.
_CPU_ROWS_PER_PASS = 256


def stacked_draws(module, x, k, *, mean=False):
    """``k`` noise draws of ``module`` on the batch ``x``, as stacked copies.

    Returns the ``k * N`` outputs, draw-major (or their mean over the draws,
    of shape ``(N, ...)``, with ``mean=True``). A
    :class:`~structnoise.splitting.SharedFront` runs its front once and
    only its back per draw; so does a mean-logits
    :class:`~structnoise.sources.EOTModel` over one (a net's noise ensemble,
    its ``prediction_module_``): its front once for all ``k`` copies. On a
    CPU the copies run in passes of about ``_CPU_ROWS_PER_PASS`` rows; on a
    GPU in one pass.
    Autograd sees the same graph either way (one gradient through all draws).
    """
    k = int(k)
    if k == 1:
        return module(x)
    if isinstance(module, SharedFront):
        # the front is deterministic: once for the batch, then the draws
        x, module = module.front(x), module.back
    else:
        inner = _ensemble_of_shared_front(module)
        if inner is not None:
            # k draws of a noise ensemble (a source with eot_samples=k given a
            # net with noise_ensemble > 1 attacks its prediction_module_; the
            # experiment's protocols attack the bare draws_module_ instead): the
            # ensemble's front once for all k copies, then each copy's ensemble
            # of backs. The backs run on the same rows in the same passes as
            # before, so the draws are the same
            back, draws = inner.module.back, int(inner.eot_samples)
            x, module = inner.module.front(x), \
                (lambda h: stacked_draws(back, h, draws, mean=True))
    n = x.shape[0]
    reps = [1] * (x.ndim - 1)
    per_pass = k if x.device.type != "cpu" else max(1, min(k, _CPU_ROWS_PER_PASS // max(n, 1)))
    outs = [module(x.repeat(min(per_pass, k - i), *reps)) for i in range(0, k, per_pass)]
    out = outs[0] if len(outs) == 1 else torch.cat(outs)
    if mean:
        return out.reshape(k, n, *out.shape[1:]).mean(0)
    return out


def _ensemble_of_shared_front(module):
    """``module`` when it is a mean-logits ensemble of draws over a SharedFront, else None.

    An ensemble is recognised by what :class:`~structnoise.sources.EOTModel`
    holds (``module``, ``eot_samples``, ``average="logits"``), not by its
    class: ``sources.eot`` imports this module, and this one stays below it.
    """
    if getattr(module, "average", None) == "logits" and hasattr(module, "eot_samples") and \
            isinstance(getattr(module, "module", None), SharedFront):
        return module
    return None


@torch.no_grad()
def predict_logits(module, X, *, batch_size=256, eot_samples=1, device=None):
    """Logits of ``module`` on ``X`` in batches (mean over ``eot_samples`` draws)."""
    device = device or module_device(module)
    outs = []
    for sl in batches(X.shape[0], batch_size):
        xb = X[sl].to(device)
        outs.append(check_logits(stacked_draws(module, xb, eot_samples, mean=True),
                                 xb.shape[0]))
    return torch.cat(outs)


def predict_labels(estimator, X):
    """Predictions of a skorch net (its ``predict``) or a torch module on images.

    A module is run in eval mode (restored after) in batches; ``X`` may be a
    tensor or an array.
    """
    if hasattr(estimator, "predict"):
        return np.asarray(estimator.predict(X.cpu().numpy() if isinstance(X, torch.Tensor)
                                            else X))
    module = resolve_module(estimator)
    dtype = module_dtype(module)
    was_training = module.training
    module.eval()
    try:
        return predict_logits(module, torch.as_tensor(X).to(dtype)).argmax(1).cpu().numpy()
    finally:
        module.train(was_training)
