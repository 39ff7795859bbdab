"""The stacked engine: the networks of one or more seeds retrained together on their frozen front.

With ``noise_retrain="after"`` every network of a seed starts from the
seed's base network, frozen up to and including the noise site. So:

* **the front is computed once** (:func:`~structnoise.splitting.split_module`):
  its output on the training images is cached, and only the layers after
  the site (the *back*) run in each training step, on the cached
  activations plus each network's own noise draw;
* **the backs train together**, those of several seeds too (each reading
  its own seed's front in its own seed's batch order): their parameters are stacked
  (``torch.func.stack_module_state``) and run under ``vmap`` with one
  optimizer. The loss is the sum of the networks' mean losses, so each
  network's gradient is its own; with an elementwise optimizer (Adam, SGD,
  ...) one optimizer over the stacked parameters is N optimizers, one per
  network (tested);
* **full noise is drawn after the next linear layer at evaluation**
  (:func:`noise_through_linear`): ``W eps ~ N(0, W Sigma W^T)``, the same
  network in distribution with a narrower draw.

Each network is prepared exactly as the sequential engine prepares it
(its skorch net, its noise module and its re-initialisation in its own
scoped seed), and its noise is drawn from its own noise module, so a
single network trained here takes the same steps as in the sequential
engine (tested to float tolerance). **All networks of a seed see the same
batch order**: with the template's ``iterator_train__shuffle=True`` it is
shuffled from one seed for the stack, where the sequential engine shuffles
each network on its own seed, so the two engines agree in distribution,
not draw for draw. Clean and naturalistic evaluation runs
on the front computed once per seed too
(:meth:`StackedTrainer.shared_measurements`); the attacks need the
gradient through the front and run on each network's full skorch net, as
in the sequential engine.
"""

import time

import numpy as np
import torch
from sklearn.base import clone
from torch import nn

from .._random import derive_seed, scoped_seed
from ..splitting import split_module
from .trainer import SequentialTrainer

__all__ = ["StackedTrainer", "stacking_obstacle", "ELEMENTWISE_OPTIMIZERS",
           "noise_through_linear", "accuracy_on_front", "correct_on_front"]

#: optimizers whose update of a parameter reads only that parameter's own
#: gradient and state: one over the stacked parameters equals one per network
ELEMENTWISE_OPTIMIZERS = (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD,
                          torch.optim.RMSprop, torch.optim.Adagrad, torch.optim.Adamax,
                          torch.optim.NAdam, torch.optim.RAdam)
_RUNNING_STATISTICS = (nn.modules.batchnorm._NormBase,)


def stacking_obstacle(net, layers, probe):
    """Why the networks of ``net`` cannot be stacked, or None when they can.

    Parameters
    ----------
    net : NoisyNeuralNetClassifier
        The experiment's template, initialized (its module is split).
    layers : tuple of str
        The noise sites.
    probe : torch.Tensor
        A few training images (the split is checked on them).

    Returns
    -------
    reason : str or None
        What the template or its module lacks for the stacked engine.

    Examples
    --------
    >>> import torch
    >>> from structnoise import NoisyNeuralNetClassifier
    >>> from structnoise.evaluation.stacked import stacking_obstacle
    >>> from structnoise.models import PaperCNN
    >>> net = NoisyNeuralNetClassifier(PaperCNN, train_split=None).initialize()
    >>> stacking_obstacle(net, ("body.tanh2",), torch.rand(2, 1, 28, 28)) is None
    True
    """
    if len(layers) != 1:
        return f"the stacked engine puts noise at one layer; this run has {len(layers)}"
    if net.train_split is not None:
        return "the stacked engine trains without a validation split: set train_split=None"
    if net.callbacks not in (None, [], ()):
        return "the stacked engine runs no callbacks of the net's own: remove them"
    optimizer = net.optimizer if isinstance(net.optimizer, type) else type(net.optimizer)
    if not issubclass(optimizer, ELEMENTWISE_OPTIMIZERS):
        return (f"the stacked engine needs an elementwise optimizer (one of "
                f"{[o.__name__ for o in ELEMENTWISE_OPTIMIZERS]}); got {optimizer.__name__}")
    routed = set(net.get_params_for("optimizer")) | set(net.get_params_for("iterator_train"))
    if "param_groups" in routed or routed - {"lr", "betas", "eps", "weight_decay",
                                               "momentum", "amsgrad", "alpha", "shuffle"}:
        return ("the stacked engine builds one optimizer over every network and shuffles "
                "with skorch's defaults: no param_groups or iterator_train__* settings")
    try:
        _, back = split_module(net.module_, layers[0], probe=probe)
    except TypeError as exc:
        return str(exc)
    norms = [name for name, m in back.named_modules() if isinstance(m, _RUNNING_STATISTICS)]
    if norms:
        return (f"the retrained layers hold BatchNorm running statistics ({norms}); stacked "
                "networks would need one set per network per step: use engine='sequential'")
    return None


class StackedTrainer(SequentialTrainer):
    """Retrains the networks of one or more seeds together, on their fronts computed once.

    Base networks, activation pairs and the noise are the sequential
    engine's; :meth:`train_networks` replaces one-at-a-time retraining.

    Examples
    --------
    >>> from structnoise.evaluation.stacked import StackedTrainer
    >>> StackedTrainer().name
    'stacked'
    """

    name = "stacked"

    def prepared_net(self, settings, plan, base_state, noise, X, y, seed_scope):
        """The network's skorch net with its noise installed and its back re-initialised.

        ``partial_fit`` for zero epochs does exactly the sequential engine's
        preparation (the probe, the noise, the freeze and the
        re-initialisation in the network's own seed).
        """
        net = settings.make_net(noise=noise, noise_source=None,
                            noise_layers=list(settings.layers), noise_retrain="after",
                            noise_warmup_epochs=0, max_epochs=settings.noise_epochs)
        with scoped_seed(0, net.device):  # overwritten by the base weights below
            net.initialize()
        net.module_.load_state_dict(base_state)
        net.initialize_optimizer()
        with seed_scope:
            net.partial_fit(X, y, epochs=0)
        return net

    def prepare_for_evaluation(self, settings, net, X):
        """Draw full noise after the next linear layer (exact in distribution, cheaper).

        See :func:`noise_through_linear`; returns the layer it now follows,
        or None.
        """
        return noise_through_linear(net, settings.layers[0], torch.as_tensor(X[:1]))

    def shared_measurements(self, settings, plans, nets, base_state, X, y):
        """Clean and naturalistic accuracies of a seed's networks, the front computed once.

        These evaluations take no gradient, and every network of a seed has
        the seed's frozen front: its output on each set of test images
        (clean, then each naturalistic source's, generated once per seed) is
        computed once, and each network runs only its back on it, drawing
        its noise ensemble as its prediction does (the same draws in the
        same order: :func:`accuracy_on_front` equals ``net.score``, tested).
        One set of activations is held at a time.

        Returns
        -------
        measured : dict
            ``plan.key -> {None or j: (correct, seconds)}`` (``correct``: per
            image, whether the net got it right), the form
            :func:`~structnoise.evaluation.evaluator.evaluate_network` takes.
        """
        from .evaluator import evaluation_images

        layer = settings.layers[0]
        measured = {p.key: {} for p in plans}
        seed = plans[0].seed
        natural = sorted({j for p in plans for j in p.evals
                          if settings.eval_sources[j][1].kind != "adversarial"})
        front = self._front(settings, base_state)
        for j in [None] + natural:
            t0 = time.perf_counter()
            images = X if j is None else evaluation_images(seed, j, settings.eval_sources[j][1],
                                                           X)
            H = _run_front(front, images, settings.net.device)
            users = [(plan, net) for plan, net in zip(plans, nets, strict=True)
                     if j is None or j in plan.evals]
            front_seconds = (time.perf_counter() - t0) / len(users)
            for plan, net in users:
                t0 = time.perf_counter()
                with scoped_seed(derive_seed(seed, "eval-shared", plan.key, j), net.device):
                    correct = correct_on_front(net, layer, H, y)
                measured[plan.key][j] = (correct, front_seconds + time.perf_counter() - t0)
            del H
        return measured

    def front_activations(self, settings, base_state, X, batch_size=1024):
        """The frozen front's output on ``X``, computed once (no noise, eval mode)."""
        return _run_front(self._front(settings, base_state), X, settings.net.device, batch_size)

    def _front(self, settings, base_state):
        """The base network's front, in eval mode (no noise hooks: the base has none)."""
        front, _ = split_module(self.base_net(settings, base_state).module_, settings.layers[0])
        return front.eval()

    def train_networks(self, settings, plans, base_state, noises, X, y, order_seed,
                       checkpoint=None, progress=None):
        """Retrain ``plans`` together; returns ``[(net, seconds), ...]`` in their order.

        The plans may belong to several seeds: each network then reads its
        own seed's front activations in its own seed's batch order, so every
        network takes exactly the steps it takes in a stack of its seed alone
        (tested), and the seeds share each step: fewer, wider steps, for a
        GPU, where a step is launch-bound (on 2 CPU cores the same speed as a
        stack per seed: :func:`~structnoise.evaluation.experiment._seeds_together`).

        With a ``checkpoint``, the stack's state (weights, optimizer, each
        seed's batch order stream and every network's noise stream) is saved
        at the end of each epoch, and a stack that finds one starts after its
        epoch: a killed run loses at most the epoch in flight, and resumes to
        the same weights as a run never killed (tested). A checkpoint of a
        larger stack serves a part of it (networks stored since).

        Parameters
        ----------
        settings : RunSettings
            The run's settings.
        plans : list of NetPlan
            Networks of standard training, of one seed or several.
        base_state : dict
            The seed's base network (its ``state_dict``), or, for plans of
            several seeds, ``seed -> state_dict``.
        noises : list of dict or None
            Each network's fitted fitters (None: no noise).
        X, y : ndarray
            Training images and labels.
        order_seed : int, dict or None
            Seed of the batch order a seed's networks share (``seed -> int``
            for plans of several seeds). None (one network only): the
            network's own retraining seed, so that it takes exactly the
            sequential engine's steps.
        checkpoint : tuple of (ResultStore, str), default=None
            The store and the name the stack's checkpoint is kept under.
        progress : ProgressLog, default=None
            Writes a line after each epoch, with the time left.
        """
        from torch.func import functional_call, stack_module_state, vmap

        t0 = time.perf_counter()
        layer = settings.layers[0]
        stack_seeds = list(dict.fromkeys(p.seed for p in plans))
        states, orders = _per_seed(stack_seeds, base_state, order_seed)
        seeds = [derive_seed(p.seed, "retrain", p.noise_family, p.noise_strength, p.structure,
                             p.trace_scale, p.augment) for p in plans]
        single = orders[stack_seeds[0]] is None
        if single and len(plans) != 1:
            raise ValueError("order_seed=None (the network's own order) needs one network.")
        # a single network in its own order: one scope for its preparation and
        # its epochs, as in the sequential engine, its order drawn from that
        # scope's stream; a stack: each network prepared in its own scope, and
        # each seed's order from its own generator (what the scope of its
        # order seed would draw), so that a seed's networks take the same
        # steps whichever seeds share the stack
        outer = scoped_seed(seeds[0] if single else orders[stack_seeds[0]],
                            settings.net.device)
        fronts = {s: self.front_activations(settings, states[s], X) for s in stack_seeds}
        device = fronts[stack_seeds[0]].device
        with outer:
            nets = [self.prepared_net(settings, plan, states[plan.seed], noise, X, y,
                                      _noop() if single else scoped_seed(seed, device))
                    for plan, noise, seed in zip(plans, noises, seeds, strict=True)]
            streams = {s: torch.default_generator if single else
                       torch.Generator().manual_seed(int(orders[s])) for s in stack_seeds}
            backs = [split_module(net.module_, layer)[1] for net in nets]
            for back in backs:
                back.train()
            params, buffers = stack_module_state(backs)
            template = _meta_copy(backs[0])

            def run(p, b, h):
                return functional_call(template, (p, b), (h,))

            stacked = vmap(run, randomness="different")
            criterion = nets[0].criterion_
            kwargs = dict(settings.net.get_params_for("optimizer"))
            kwargs.setdefault("lr", settings.net.lr)
            optimizer_cls = settings.net.optimizer
            optimizer = optimizer_cls(list(params.values()), **kwargs)
            yt = torch.as_tensor(y).long().to(device)
            shuffle = bool(settings.net.get_params_for("iterator_train").get("shuffle", False))
            n, batch = len(X), int(settings.net.batch_size)
            batch = n if batch == -1 else batch
            keys = [repr(p.key) for p in plans]
            noise_modules = [(getattr(net, "noise_modules_", None) or {}).get(layer)
                             for net in nets]
            first = 0
            if checkpoint is not None:
                first = _resume(checkpoint[0].load_checkpoint(checkpoint[1]), keys, params,
                                buffers, optimizer, noise_modules, streams, device)
            what = (f"seed {stack_seeds[0]}" if len(stack_seeds) == 1 else
                    "seeds " + ", ".join(map(str, stack_seeds)))
            epoch_done = None if progress is None else progress.epochs(
                f"{what}: retraining {len(plans)} networks", first, int(settings.noise_epochs))
            for epoch in range(first, int(settings.noise_epochs)):
                order = {s: _epoch_order(streams[s], n, shuffle) for s in stack_seeds}
                starts = range(0, n, batch)
                per_chunk = max(1, _NOISE_CHUNK_ROWS // batch)
                for c in range(0, len(starts), per_chunk):
                    sizes = [min(batch, n - i) for i in starts[c:c + per_chunk]]
                    draws = [_noise_draws(net, layer, sizes, fronts[plan.seed])
                             for net, plan in zip(nets, plans, strict=True)]
                    for t, i in enumerate(starts[c:c + per_chunk]):
                        idx = {s: order[s][i:i + batch] for s in stack_seeds}
                        h = {s: fronts[s][idx[s]] for s in stack_seeds}
                        noisy = torch.stack([
                            h[p.seed] if d is None else h[p.seed].add(
                                d[1][t].view_as(h[p.seed]), alpha=d[0])
                            for p, d in zip(plans, draws, strict=True)])
                        labels = {s: yt[idx[s]] for s in stack_seeds}
                        yb = labels[stack_seeds[0]] if len(stack_seeds) == 1 else \
                            torch.stack([labels[p.seed] for p in plans])
                        _train_step(stacked, params, buffers, noisy, yb, criterion, optimizer)
                if checkpoint is not None:
                    checkpoint[0].save_checkpoint(checkpoint[1], _stack_state(
                        epoch, keys, params, buffers, optimizer, noise_modules, streams,
                        device))
                if epoch_done is not None:
                    epoch_done(epoch)
            with torch.no_grad():
                for k, back in enumerate(backs):
                    state = {name: value[k] for name, value in {**params, **buffers}.items()}
                    back.load_state_dict(state)
        seconds = (time.perf_counter() - t0) / len(nets)
        return [(net, seconds) for net in nets]


def _per_seed(stack_seeds, base_state, order_seed):
    """``(seed -> base state, seed -> order seed)`` of a stack, checked."""
    from collections.abc import Mapping

    by_seed = isinstance(base_state, Mapping) and all(
        isinstance(v, Mapping) for v in base_state.values())
    states = dict(base_state) if by_seed else {s: base_state for s in stack_seeds}
    orders = dict(order_seed) if isinstance(order_seed, Mapping) else \
        {s: order_seed for s in stack_seeds}
    if len(stack_seeds) > 1 and not (by_seed and isinstance(order_seed, Mapping)):
        raise ValueError(f"plans of seeds {stack_seeds} train together only with base_state "
                         "and order_seed given per seed (dicts seed -> state, seed -> int).")
    missing = [s for s in stack_seeds if s not in states or s not in orders]
    if missing:
        raise ValueError(f"base_state and order_seed lack the seed(s) {missing} of the plans.")
    if len(stack_seeds) > 1 and any(orders[s] is None for s in stack_seeds):
        raise ValueError("order_seed=None (the network's own order) needs one network.")
    return states, orders


def _epoch_order(stream, n, shuffle):
    """The images' order of one epoch, drawn from ``stream`` as skorch's DataLoader draws it.

    At each epoch a DataLoader draws its iterator's base seed (unused
    without workers), then, when it shuffles, its RandomSampler's seed.
    """
    torch.empty((), dtype=torch.int64).random_(generator=stream)
    if not shuffle:
        return torch.arange(n)
    seed = int(torch.empty((), dtype=torch.int64).random_(generator=stream).item())
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


def _run_front(front, X, device, batch_size=1024):
    """``front``'s output on the images ``X`` on ``device``, in batches, without gradient."""
    with torch.no_grad():
        return torch.cat([front(torch.as_tensor(X[i:i + batch_size]).to(device))
                          for i in range(0, len(X), batch_size)])


def accuracy_on_front(net, layer, H, y):
    """Accuracy of ``net``'s prediction from its front's output ``H`` (no gradient).

    The mean of :func:`correct_on_front`.

    Parameters
    ----------
    net : NoisyNeuralNetClassifier
        A trained net whose module splits at ``layer``.
    layer : str
        The noise site (the front's last layer).
    H : torch.Tensor
        The front's output on the images, without noise.
    y : array-like
        Their labels.

    Returns
    -------
    accuracy : float

    Examples
    --------
    >>> import torch
    >>> from structnoise import NoisyNeuralNetClassifier
    >>> from structnoise.evaluation.stacked import accuracy_on_front
    >>> from structnoise.models import DigitsMLP
    >>> from structnoise.splitting import split_module
    >>> net = NoisyNeuralNetClassifier(DigitsMLP, train_split=None).initialize()
    >>> X = torch.rand(6, 1, 8, 8)
    >>> H = split_module(net.module_, "body.2")[0](X).detach()
    >>> accuracy_on_front(net, "body.2", H, net.predict(X.numpy()))
    1.0
    """
    return float(np.mean(correct_on_front(net, layer, H, y)))


def correct_on_front(net, layer, H, y):
    """Which images ``net``'s prediction gets right, from its front's output ``H`` (no gradient).

    The back runs on ``H`` with the net's noise ensemble drawn as its own
    prediction draws it: in the same batches (``iterator_valid``'s batch
    size), the ``k`` draws stacked as :func:`~structnoise._inference.stacked_draws`
    stacks them, the noise at the site added as its hook adds it. The front
    computes nothing random, so from the same state of the noise modules'
    generators this equals ``net.predict(X) == y`` draw for draw.

    Parameters
    ----------
    net : NoisyNeuralNetClassifier
        A trained net whose module splits at ``layer``.
    layer : str
        The noise site (the front's last layer).
    H : torch.Tensor
        The front's output on the images, without noise.
    y : array-like
        Their labels.

    Returns
    -------
    correct : ndarray of bool, shape (n_images,)

    Examples
    --------
    >>> import numpy as np, torch
    >>> from structnoise import NoisyNeuralNetClassifier
    >>> from structnoise.evaluation.stacked import correct_on_front
    >>> from structnoise.models import DigitsMLP
    >>> from structnoise.splitting import split_module
    >>> net = NoisyNeuralNetClassifier(DigitsMLP, train_split=None).initialize()
    >>> X = torch.rand(6, 1, 8, 8)
    >>> y = net.predict(X.numpy())
    >>> H = split_module(net.module_, "body.2")[0](X)
    >>> bool(correct_on_front(net, "body.2", H.detach(), y).all())
    True
    """
    from .._inference import batches, stacked_draws

    _, back = split_module(net.module_, layer)
    stochastic = net.noise_active_in_eval
    k = int(net.noise_ensemble) if stochastic else 1
    site = _site_noise(net, layer, training=False)

    def draw(h):
        # the site's hook, as it runs in eval mode
        if site is not None:
            h = site[0].add_noise(h, site[1])
        return back(h)

    batch = int(net.get_params_for("iterator_valid").get("batch_size", net.batch_size))
    batch = len(H) if batch == -1 else batch
    was_training = net.module_.training
    net.module_.eval()
    try:
        with torch.no_grad():
            labels = torch.cat([stacked_draws(draw, H[sl].to(net.device), k, mean=True).argmax(1)
                                for sl in batches(len(H), batch)])
    finally:
        net.module_.train(was_training)
    return labels.cpu().numpy() == np.asarray(y)


def noise_through_linear(net, layer, probe):
    """Draw a trained net's full noise after the linear layer that follows its site.

    When the first layer after the noise site is a convolution or a linear
    map ``W`` (PaperCNN at L=2: ``body.conv3``), ``W (h + eps) + b`` equals
    ``W h + b + W eps`` and ``W eps ~ N(0, W Sigma W^T)``: noise of that
    covariance added to the layer's output gives the same network, exactly
    in distribution, with a narrower draw (PaperCNN: 1600 wide instead of
    3136, about 3.8x fewer operations per draw). The layer's parameters must
    be frozen: the evaluation's, not the training's. Other structures are
    left alone (a diagonal becomes a full matrix there, a dearer draw).

    Parameters
    ----------
    net : NoisyNeuralNetClassifier
        A trained net with full noise at ``layer``.
    layer : str
        The noise site.
    probe : torch.Tensor
        One or more inputs (the site's activation shape is read from them).

    Returns
    -------
    moved : str or None
        The layer the noise now follows, or None when nothing was moved.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from structnoise import NoisyNeuralNetClassifier, StructuredNoiseFitter
    >>> from structnoise.evaluation.stacked import noise_through_linear
    >>> from structnoise.models import DigitsMLP
    >>> noise = StructuredNoiseFitter(random_state=0).fit_covariance(np.eye(128))
    >>> net = NoisyNeuralNetClassifier(DigitsMLP, noise={"body.2": noise}).initialize()
    >>> net.fit_noise(None) is net
    True
    >>> noise_through_linear(net, "body.2", torch.rand(1, 1, 8, 8))
    'body.3'
    """
    fitter = (getattr(net, "noise_", None) or {}).get(layer)
    if fitter is None or fitter.structure != "full" or len(net.noise_) != 1:
        return None
    front, back = split_module(net.module_, layer)
    first = next(iter(back.children()), None)
    if not isinstance(first, (nn.Conv2d, nn.Linear)):
        return None
    names = {id(m): name for name, m in net.module_.named_modules()}
    target = names.get(id(first))
    if target is None:
        return None
    with torch.no_grad(), net.noise_disabled():
        front.eval()
        shape = front(probe[:1].to(net.device)).shape[1:]
        d = int(np.prod(shape))
        # the columns of the noise's factor, as activation maps through W (no
        # bias). W's products in float32, the precision the draws are made in:
        # a float64 convolution of d maps took 1.4 s against 0.08 s (PaperCNN
        # at L=2, 2 cores), more than the narrower draws saved on a small
        # evaluation; the Gram matrix, where the sums are long, in float64.
        factor = torch.as_tensor(np.asarray(fitter.factor_), dtype=torch.float32)
        columns = factor.T.reshape(d, *shape)
        weight = first.weight.detach().to("cpu", torch.float32)
        if isinstance(first, nn.Conv2d):
            mapped = torch.nn.functional.conv2d(columns, weight, None, first.stride,
                                                first.padding, first.dilation, first.groups)
        else:
            mapped = columns.reshape(d, -1) @ weight.T
        mapped = mapped.reshape(d, -1).double()
        covariance = (mapped.T @ mapped).numpy()
    moved = clone(fitter).set_params(structure="full", trace_scale=None, shrinkage=None,
                                     reg_covar=0.0).fit_covariance(covariance)
    net.set_params(noise={target: moved}, noise_layers=[target])
    net.fit_noise(None)
    return target


#: rows of noise a network draws ahead in the stacked retraining: its factor's
#: product runs once per chunk instead of once per batch. Measured on 2 cores
#: (3136-wide full noise, 8 triangular panels): 83 us a row in batches of 64,
#: 49 us in chunks of 1024
_NOISE_CHUNK_ROWS = 1024


def _noise_draws(net, layer, sizes, like):
    """``(scale, [eps per batch])`` of the network's next batches, or None without noise.

    The draws come from the network's own noise module and stream, batch
    by batch, as its forward hook would draw them in training
    (:meth:`~structnoise.NoiseModule.sample_chunks`): the same numbers, the
    factor applied to the chunk at once.
    """
    site = _site_noise(net, layer, training=True)
    if site is None or site[1] == 0:
        return None
    noise, scale = site
    return scale, noise.sample_chunks(sizes, device=like.device, dtype=like.dtype)


def _site_noise(net, layer, training):
    """``(noise module, multiplier)`` the site's hook draws with in this mode, or None."""
    noise = (getattr(net, "noise_modules_", None) or {}).get(layer)
    control = getattr(net, "noise_control_", None)
    if noise is None or control is None or not control.active(training):
        return None
    return noise, control.scale * noise.scale


def _stack_state(epoch, keys, params, buffers, optimizer, noise_modules, streams, device):
    """Everything the stack's next epoch depends on, as plain tensors and values."""
    state = {"epoch": int(epoch), "keys": list(keys),
             "params": {k: v.detach().clone() for k, v in params.items()},
             "buffers": {k: v.detach().clone() for k, v in buffers.items()},
             "optimizer": optimizer.state_dict(), "rng": torch.get_rng_state(),
             "orders": {int(s): g.get_state() for s, g in streams.items()},
             "noise": [None if m is None else m.generator_state() for m in noise_modules]}
    if device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(device)
    return state


def _resume(state, keys, params, buffers, optimizer, noise_modules, streams, device):
    """Load a checkpoint into the stack; returns the first epoch still to run (0: none)."""
    if state is None or not set(keys) <= set(state["keys"]):
        return 0  # another stack's (a changed plan): start afresh, it is overwritten
    rows = torch.tensor([state["keys"].index(k) for k in keys])
    whole = len(state["keys"])

    def part(value):
        # the stacked tensors (and Adam's moments of them) have one row per network
        if isinstance(value, torch.Tensor) and value.ndim and value.shape[0] == whole:
            return value.index_select(0, rows)
        return value

    with torch.no_grad():
        for target, saved in ((params, state["params"]), (buffers, state["buffers"])):
            for name, value in target.items():
                value.copy_(part(saved[name]))
    saved_opt = state["optimizer"]
    optimizer.load_state_dict({
        "state": {i: {k: part(v) for k, v in st.items()} for i, st in
                  saved_opt["state"].items()},
        "param_groups": saved_opt["param_groups"]})
    torch.set_rng_state(state["rng"])
    # each seed's order stream (a checkpoint written before streams were kept
    # per seed has one seed's, in the global state restored above)
    for s, stream in streams.items():
        saved = state.get("orders", {}).get(int(s))
        if saved is not None:
            stream.set_state(saved)
        elif len(streams) == 1 and stream is not torch.default_generator:
            stream.set_state(state["rng"])
    if "cuda_rng" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda_rng"], device)
    for module, i in zip(noise_modules, rows.tolist(), strict=True):
        if module is not None and state["noise"][i] is not None:
            module.set_generator_state(state["noise"][i])
    return int(state["epoch"]) + 1


def _train_step(stacked, params, buffers, noisy, y, criterion, optimizer):
    """One step of the stacked backs: the sum of the networks' mean losses.

    ``y``: the labels all networks share (one seed), or one row per network.
    """
    logits = stacked(params, buffers, noisy)
    loss = sum(criterion(logits[k], y if y.ndim == 1 else y[k]) for k in range(logits.shape[0]))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def _meta_copy(module):
    """A parameter-free copy of ``module`` for ``functional_call`` (no memory)."""
    import copy

    return copy.deepcopy(module).to("meta")


class _noop:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
