"""Training the networks of an experiment: base networks, their noise, the retraining.

:class:`SequentialTrainer` trains one skorch net at a time, exactly as a
user would: the reference engine. Every random draw of a step happens in
its own scoped seed (:func:`~structnoise._random.scoped_seed`) derived from
the network's identity, so a network's weights do not depend on what else
ran before it, in which process, or on ``n_jobs``.
"""

import time

import numpy as np
import torch
from sklearn.base import clone

from .._random import derive_seed, scoped_seed, seeded_clone
from ..activations import ActivationPairs

__all__ = ["SequentialTrainer"]


def _base_params(settings):
    return dict(noise=None, noise_source=None, noise_layers=None, noise_retrain="all",
                max_epochs=settings.base_epochs)


def _state_on_cpu(module):
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


class SequentialTrainer:
    """Trains each network on its own with skorch (the reference engine).

    Examples
    --------
    >>> from structnoise.evaluation.trainer import SequentialTrainer
    >>> SequentialTrainer().name
    'sequential'
    """

    name = "sequential"

    def train_base(self, settings, seed, X, y):
        """The noise-free base network of ``seed``; returns its weights (CPU state dict)."""
        net = settings.make_net(**_base_params(settings))
        with scoped_seed(derive_seed(seed, "base"), net.device):
            net.fit(X, y)
        return _state_on_cpu(net.module_)

    def base_net(self, settings, base_state):
        """The base network, loaded from its weights (to attack or to read pairs from)."""
        net = settings.make_net(**_base_params(settings))
        # the module's own initialisation is overwritten at once: no seed needed,
        # but it must not advance the caller's generator either
        with scoped_seed(0, net.device):
            net.initialize()
        net.module_.load_state_dict(base_state)
        return net

    def activation_pairs(self, settings, seed, noise_index, base_state, X, y):
        """Layer -> (n, 2, d) activation pairs of noise source ``noise_index`` on the base net."""
        label, source = settings.noise_sources[noise_index]
        source = seeded_clone(source, derive_seed(seed, "noise-source", noise_index))
        base = self.base_net(settings, base_state)
        if settings.pair_images is not None and settings.pair_images < len(X):
            rows = np.sort(np.random.default_rng(derive_seed(seed, "pair-images")).choice(
                len(X), settings.pair_images, replace=False))
            X, y = X[rows], y[rows]
        return ActivationPairs(base, list(settings.layers), source,
                               batch_size=settings.pair_batch_size).fit_transform(X, y)

    def fitted_noise(self, settings, plan, pairs):
        """Layer -> fitted fitter of ``plan`` (None for the noise-free network).

        Trace-scaled isotropic noise (``pairs=None``) needs no data: its
        covariance is ``trace_scale * I`` at the layer's width.
        """
        if plan.structure == "none":
            return None
        fitters = {}
        for layer in settings.layers:
            f = clone(settings.noise).set_params(
                structure=plan.structure, trace_scale=plan.trace_scale,
                random_state=derive_seed(plan.seed, "noise", plan.noise_family,
                                         plan.noise_strength, plan.structure, plan.trace_scale,
                                         layer))
            if pairs is None:
                f.fit_isotropic(settings.widths[layer])
            else:
                f.fit(pairs[layer])
            fitters[layer] = f
        return fitters

    def prepare_for_evaluation(self, settings, net, X):
        """Nothing: the sequential engine evaluates the net as trained (the reference)."""
        return None

    def train_network(self, settings, plan, base_state, noise, X, y):
        """Freeze up to the noise site, re-initialise after it, retrain with the noise.

        Returns the fitted net and the seconds it took.
        """
        t0 = time.perf_counter()
        train = {}
        if plan.augment is not None:
            aug_source, ratio = settings.augmentations[plan.augment]
            aug_source = seeded_clone(aug_source, derive_seed(plan.seed, "augment", plan.augment))
            train = dict(train_source=aug_source, train_source_ratio=float(ratio))
        net = settings.make_net(noise=noise, noise_source=None,
                           noise_layers=list(settings.layers), noise_retrain="after",
                           noise_warmup_epochs=0, max_epochs=settings.noise_epochs, **train)
        with scoped_seed(0, net.device):  # overwritten by the base weights below
            net.initialize()
        net.module_.load_state_dict(base_state)
        net.initialize_optimizer()
        seed = derive_seed(plan.seed, "retrain", plan.noise_family, plan.noise_strength,
                           plan.structure, plan.trace_scale, plan.augment)
        with scoped_seed(seed, net.device):
            net.partial_fit(X, y)
        return net, time.perf_counter() - t0


def module_widths(net, layers, X):
    """Layer -> flattened width, from one forward pass of ``net``'s module on ``X[:2]``."""
    from ..activations import capture_activations

    with torch.no_grad(), capture_activations(net.module_, list(layers)) as store:
        net.module_.eval()
        net.module_(torch.as_tensor(X[:2]).to(net.device))
    return {name: int(store[name][0].shape[1]) for name in layers}
