"""structnoise.evaluation.stacked: the cached front is exact, the stack is N networks."""

import dataclasses

import numpy as np
import pytest
import torch
from evaluation_helpers import TinyNet, digits
from sklearn.base import clone

from structnoise import NoisyNeuralNetClassifier, StructuredNoiseFitter
from structnoise.evaluation import Experiment
from structnoise.evaluation.plan import NetPlan
from structnoise.evaluation.presets import _digits28
from structnoise.evaluation.protocols import get_protocols
from structnoise.evaluation.settings import RunSettings
from structnoise.evaluation.stacked import StackedTrainer, stacking_obstacle
from structnoise.evaluation.trainer import SequentialTrainer
from structnoise.models import PaperCNN
from structnoise.sources import Corruption, GaussianNoise

SITE = "body.tanh2"


@pytest.fixture(scope="module")
def setup():
    X, y, Xt, yt = _digits28(320, 60)()
    net = NoisyNeuralNetClassifier(PaperCNN, optimizer=torch.optim.Adam, lr=1e-3, batch_size=64,
                                   train_split=None, noise_ensemble=3, verbose=0)
    settings = RunSettings(net, (SITE,), {SITE: 3136},
                           StructuredNoiseFitter(shrinkage=None, reg_covar=1e-4),
                           (("noise", GaussianNoise(0.3)),), (), get_protocols("paper"),
                           base_epochs=1, noise_epochs=2, pair_batch_size=256)
    trainer = SequentialTrainer()
    base = trainer.train_base(settings, 0, X, y)
    pairs = trainer.activation_pairs(settings, 0, 0, base, X, y)
    plans = [NetPlan(0, "full", 2.0, 0, "GaussianNoise", "noise", "naturalistic", 0.3),
             NetPlan(0, "diagonal", 2.0, 0, "GaussianNoise", "noise", "naturalistic", 0.3),
             NetPlan(0, "isotropic", 2.0, 0, "any", "any", "any", float("nan")),
             NetPlan(0, "none", None, None, "none", "none", "any", float("nan"))]
    noises = [trainer.fitted_noise(settings, p, None if p.noise_family == "any" else pairs)
              for p in plans]
    return settings, base, plans, noises, (X, y, Xt, yt)


def _weights(net):
    return {k: v.detach().clone() for k, v in net.module_.state_dict().items()}


def _assert_close(a, b, lr, atol=2e-6, rtol=1e-4, stray=1e-3):
    """The weights ``a`` and ``b`` took the same steps, up to float rounding.

    Every entry but a fraction ``stray`` of each tensor agrees to
    ``atol``/``rtol``, and none differs by more than a tenth of one Adam step
    (``lr / 10``). The stray entries are most likely Adam's doing (not
    traced step by step): its first steps are close to ``lr * sign(gradient)``,
    so where a gradient nearly cancels, rounding in it (the cached front is
    computed in other batch sizes) moves the step by a few percent of ``lr``.
    Measured with torch's default kernels (no AVX): 1 of PaperCNN's 12800
    ``fc1`` weights off by 2.1e-5 after 10 steps, all other entries within
    1e-6. A wrong step (other images, other noise) moves nearly every entry,
    by up to ``lr``.
    """
    assert a.keys() == b.keys()
    for k in a:
        diff = (a[k] - b[k]).abs()
        assert diff.max() <= lr / 10, (k, float(diff.max()))
        off = diff > atol + rtol * b[k].abs()
        assert off.sum() <= stray * off.numel(), (k, int(off.sum()), off.numel())


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("which", [0, 3])  # full noise, and the noise-free network
def test_a_network_on_the_cached_front_takes_the_sequential_steps(setup, which, shuffle):
    settings, base, plans, noises, (X, y, Xt, yt) = setup
    net = clone(settings.net).set_params(iterator_train__shuffle=shuffle)
    settings = dataclasses.replace(settings, net=net)
    plan, noise = plans[which], noises[which]
    sequential, _ = SequentialTrainer().train_network(settings, plan, base, noise, X, y)
    [(cached, _)] = StackedTrainer().train_networks(settings, [plan], base, [noise], X, y,
                                                    order_seed=None)
    _assert_close(_weights(cached), _weights(sequential), settings.net.lr)
    # the noise streams are where they would be: the ensemble predicts the same
    np.testing.assert_allclose(cached.predict_proba(Xt), sequential.predict_proba(Xt),
                               atol=1e-4)
    assert cached.noise_reinitialized_ == sequential.noise_reinitialized_


def test_one_optimizer_over_the_stack_equals_one_per_network(setup):
    settings, base, plans, noises, (X, y, _, _) = setup
    trainer = StackedTrainer()
    stacked = trainer.train_networks(settings, plans, base, noises, X, y, order_seed=7)
    for k, (plan, noise) in enumerate(zip(plans, noises, strict=True)):
        [(alone, _)] = trainer.train_networks(settings, [plan], base, [noise], X, y,
                                              order_seed=7)
        _assert_close(_weights(stacked[k][0]), _weights(alone), settings.net.lr)


@pytest.fixture(scope="module")
def two_seeds(setup):
    """The setup's networks, and the same four networks on a second seed's base network."""
    settings, base, plans, noises, data = setup
    X, y = data[0], data[1]
    trainer = SequentialTrainer()
    base1 = trainer.train_base(settings, 1, X, y)
    pairs1 = trainer.activation_pairs(settings, 1, 0, base1, X, y)
    plans1 = [dataclasses.replace(p, seed=1) for p in plans]
    noises1 = [trainer.fitted_noise(settings, p, None if p.noise_family == "any" else pairs1)
               for p in plans1]
    return (settings, {0: base, 1: base1}, plans + plans1, noises + noises1,
            {0: 7, 1: 8}, data)


def test_networks_of_several_seeds_stacked_take_their_own_seeds_steps(two_seeds):
    settings, bases, plans, noises, orders, (X, y, _, _) = two_seeds
    settings = dataclasses.replace(settings, net=clone(settings.net).set_params(
        iterator_train__shuffle=True))
    trainer = StackedTrainer()
    together = trainer.train_networks(settings, plans, bases, noises, X, y, order_seed=orders)
    for seed in (0, 1):
        mine = [k for k, p in enumerate(plans) if p.seed == seed]
        alone = trainer.train_networks(settings, [plans[k] for k in mine], bases[seed],
                                       [noises[k] for k in mine], X, y,
                                       order_seed=orders[seed])
        for k, (net, _) in zip(mine, alone, strict=True):
            _assert_close(_weights(together[k][0]), _weights(net), settings.net.lr)
    # the seeds' networks really differ: each read its own seed's front and labels
    assert not torch.equal(_weights(together[0][0])["head.weight"],
                           _weights(together[4][0])["head.weight"])


def test_a_stack_of_several_seeds_killed_after_an_epoch_resumes_to_the_same_weights(
        two_seeds, tmp_path):
    from structnoise.evaluation.store import ResultStore

    settings, bases, plans, noises, orders, (X, y, _, _) = two_seeds
    settings = dataclasses.replace(settings, noise_epochs=2, net=clone(settings.net).set_params(
        iterator_train__shuffle=True))
    trainer = StackedTrainer()
    whole = trainer.train_networks(settings, plans, bases, noises, X, y, order_seed=orders)

    class KilledAfterFirst(ResultStore):
        def save_checkpoint(self, name, state):
            super().save_checkpoint(name, state)
            if state["epoch"] == 0:
                raise _Killed

    store = KilledAfterFirst(str(tmp_path), "abc")
    with pytest.raises(_Killed):
        trainer.train_networks(settings, plans, bases, noises, X, y, order_seed=orders,
                               checkpoint=(store, "stack-seeds"))
    store = ResultStore(str(tmp_path), "abc")
    # the second seed's networks alone (the first's stored since): their part of the
    # checkpoint, their seed's order stream where the epoch left it
    mine = [k for k, p in enumerate(plans) if p.seed == 1]
    part = trainer.train_networks(settings, [plans[k] for k in mine], {1: bases[1]},
                                  [noises[k] for k in mine], X, y, order_seed={1: orders[1]},
                                  checkpoint=(store, "stack-seeds"))
    for k, (net, _) in zip(mine, part, strict=True):
        for name, value in _weights(whole[k][0]).items():
            torch.testing.assert_close(_weights(net)[name], value, rtol=0, atol=0)


def test_several_seeds_need_their_base_networks_and_orders_by_seed(two_seeds):
    settings, bases, plans, noises, orders, (X, y, _, _) = two_seeds
    trainer = StackedTrainer()
    with pytest.raises(ValueError, match="given per seed"):
        trainer.train_networks(settings, plans, bases[0], noises, X, y, order_seed=3)
    with pytest.raises(ValueError, match=r"lack the seed\(s\) \[1\]"):
        trainer.train_networks(settings, plans, {0: bases[0]}, noises, X, y,
                               order_seed={0: 1, 1: 2})


def test_the_front_is_frozen_and_only_the_back_changes(setup):
    settings, base, plans, noises, (X, y, _, _) = setup
    [(net, _)] = StackedTrainer().train_networks(settings, plans[:1], base, noises[:1], X, y,
                                                 order_seed=1)
    after = _weights(net)
    for name in ("body.conv1.weight", "body.conv2.bias"):
        assert torch.equal(after[name], base[name])
    assert not torch.equal(after["head.weight"], base["head.weight"])


@pytest.mark.parametrize("moved", [False, True])
def test_accuracy_on_the_cached_front_is_the_nets_score_draw_for_draw(setup, moved):
    from structnoise._random import scoped_seed
    from structnoise.evaluation.stacked import accuracy_on_front
    from structnoise.splitting import split_module

    settings, base, plans, noises, (X, y, Xt, yt) = setup
    trainer = StackedTrainer()
    trained = trainer.train_networks(settings, plans, base, noises, X, y, order_seed=3)
    H = trainer.front_activations(settings, base, Xt)
    for plan, (net, _) in zip(plans, trained, strict=True):
        if moved:
            trainer.prepare_for_evaluation(settings, net, X)
        # the front is the base network's: the same for every network of the seed
        front, _ = split_module(net.module_, SITE)
        with torch.no_grad(), net.noise_disabled():
            front.eval()
            torch.testing.assert_close(front(torch.as_tensor(Xt)), H)
        # the noise modules draw from their own generators: from one state,
        # the same draws in both paths
        generators = [m._generator(torch.device("cpu"))
                      for m in (getattr(net, "noise_modules_", None) or {}).values()]
        states = [g.get_state() for g in generators]
        with scoped_seed(11):
            labels = net.predict(Xt)
        for g, state in zip(generators, states, strict=True):
            g.set_state(state)
        with scoped_seed(11):
            # scored against the net's own predictions: every label the same
            assert accuracy_on_front(net, SITE, H, labels) == 1.0, plan.structure
        if plan.structure == "full":  # the draws matter: a later state predicts otherwise
            assert not np.allclose(net.predict_proba(Xt), net.predict_proba(Xt))


def test_shared_measurements_give_every_network_its_clean_and_naturalistic_rows(setup):
    settings, base, plans, noises, (X, y, Xt, yt) = setup
    rot = Corruption("rotate", strength=2.0)
    settings = dataclasses.replace(settings, eval_sources=(("rot", rot),))
    plans = [dataclasses.replace(p, evals=(0,)) for p in plans]
    trainer = StackedTrainer()
    nets = [net for net, _ in trainer.train_networks(settings, plans, base, noises, X, y,
                                                     order_seed=3)]
    measured = trainer.shared_measurements(settings, plans, nets, base, Xt, yt)
    assert set(measured) == {p.key for p in plans}
    for plan in plans:
        assert set(measured[plan.key]) == {None, 0}
        correct, seconds = measured[plan.key][None]
        assert correct.dtype == bool and correct.shape == (len(Xt),) and seconds > 0
    # the noise-free network is deterministic: its measurements are its scores
    none = plans.index(next(p for p in plans if p.structure == "none"))
    from structnoise.evaluation.evaluator import evaluation_images

    np.testing.assert_array_equal(measured[plans[none].key][None][0],
                                  nets[none].predict(Xt) == yt)
    np.testing.assert_array_equal(measured[plans[none].key][0][0],
                                  nets[none].predict(evaluation_images(0, 0, rot, Xt)) == yt)


@pytest.mark.slow
def test_the_two_engines_agree_in_distribution():
    """Mean clean and modified accuracy per condition over 4 seeds.

    The engines differ only in the batch order (shared by a seed's stack,
    per network in the sequential engine), so their means differ by sampling
    noise: the bound is 3 standard errors of the difference, from the
    seed-to-seed spread measured here, plus 0.02 for the finite test set.
    """
    X, y, Xt, yt = _digits28(600, 150)()
    net = NoisyNeuralNetClassifier(PaperCNN, optimizer=torch.optim.Adam, lr=1e-3,
                                   batch_size=64, train_split=None, noise_ensemble=2, verbose=0)
    rows = {}
    for engine in ("sequential", "stacked"):
        exp = Experiment(net, SITE, [Corruption("rotate", strength=2.0)],
                         [Corruption("rotate", strength=2.0)],
                         noise=StructuredNoiseFitter(shrinkage=None, reg_covar=1e-4),
                         protocols=("paper",), seeds=(0, 1, 2, 3), base_epochs=3,
                         noise_epochs=2, engine=engine, verbose=0)
        rows[engine] = exp.run(X, y, Xt, yt)
        assert exp.engine_ == engine
    keys = ["structure", "noise_label", "eval_label"]
    a = rows["sequential"].groupby(keys + ["seed"]).accuracy.mean()
    b = rows["stacked"].groupby(keys + ["seed"]).accuracy.mean()
    for key, sa in a.groupby(level=keys):
        sb = b.loc[key]
        se = np.sqrt(sa.var(ddof=1) / len(sa) + sb.var(ddof=1) / len(sb))
        assert abs(sa.mean() - sb.mean()) <= 3 * se + 0.02, (key, sa.mean(), sb.mean(), se)


# ------------------------------------------------------------------ bad input
def test_stacked_refuses_a_module_it_cannot_split():
    X, y, Xt, yt = digits()
    net = NoisyNeuralNetClassifier(TinyNet, train_split=None, verbose=0)
    exp = Experiment(net, "act", [GaussianNoise(0.2)], [GaussianNoise(0.2)], seeds=(0,),
                     base_epochs=1, noise_epochs=1, engine="stacked", verbose=0)
    with pytest.raises(ValueError, match="split_at"):
        exp.run(X, y, Xt, yt)


def test_auto_falls_back_and_says_why(capsys):
    X, y, Xt, yt = digits()
    net = NoisyNeuralNetClassifier(TinyNet, train_split=None, verbose=0)
    exp = Experiment(net, "act", [GaussianNoise(0.2)], [GaussianNoise(0.2)], seeds=(0,),
                     structures=("none",), base_epochs=1, noise_epochs=1, verbose=1)
    exp.run(X, y, Xt, yt)
    assert exp.engine_ == "sequential"
    assert "engine='auto' runs the sequential engine" in capsys.readouterr().err


class _NormedBack(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 32),
                                        torch.nn.Tanh(), torch.nn.BatchNorm1d(32))
        self.head = torch.nn.Linear(32, 10)

    def forward(self, x):
        return self.head(self.body(x))

    def split_at(self, layer):
        children = list(self.body.children())
        return (torch.nn.Sequential(*children[:3]),
                torch.nn.Sequential(*children[3:], self.head))


def test_batch_norm_in_the_retrained_layers_is_refused_with_the_reason():
    net = NoisyNeuralNetClassifier(_NormedBack, train_split=None).initialize()
    reason = stacking_obstacle(net, ("body.2",), torch.rand(4, 1, 8, 8))
    assert "BatchNorm running statistics" in reason
    split_ok = NoisyNeuralNetClassifier(PaperCNN, train_split=None).initialize()
    assert "one layer" in stacking_obstacle(split_ok, ("body.tanh2", "body.tanh4"),
                                            torch.rand(2, 1, 28, 28))
    with_split = NoisyNeuralNetClassifier(PaperCNN).initialize()
    assert "train_split=None" in stacking_obstacle(with_split, (SITE,),
                                                   torch.rand(2, 1, 28, 28))


# ------------------------------------------------- full noise after the next linear layer
def _site_net():
    from structnoise._random import scoped_seed

    with scoped_seed(0):  # the same weights for both sides of a comparison
        return torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.Tanh(),
                                   torch.nn.Conv2d(2, 3, 3), torch.nn.Flatten(),
                                   torch.nn.Linear(12, 10))


def test_full_noise_moved_through_a_convolution_has_covariance_w_sigma_wt():
    from structnoise.evaluation.stacked import noise_through_linear

    module = _site_net()
    rng = np.random.default_rng(0)
    a = rng.standard_normal((32, 32))
    sigma = a @ a.T / 32 + 0.1 * np.eye(32)
    noise = StructuredNoiseFitter(random_state=0).fit_covariance(sigma)
    net = NoisyNeuralNetClassifier(module, noise={"1": noise}, noise_layers="1",
                                   train_split=None).initialize()
    net.fit_noise(None)
    assert noise_through_linear(net, "1", torch.rand(2, 1, 4, 4)) == "2"
    # W by brute force: the convolution (no bias) of every basis activation map
    conv = module[2]
    basis = torch.eye(32, dtype=torch.float64).reshape(32, 2, 4, 4)
    W = torch.nn.functional.conv2d(basis, conv.weight.detach().double())
    W = W.reshape(32, 12).T.numpy()
    # W's products are taken in float32, the precision of the draws themselves
    expected = W @ sigma @ W.T
    np.testing.assert_allclose(net.noise_["2"].covariance_, expected,
                               rtol=1e-5, atol=1e-6 * np.abs(expected).max())
    assert list(net.noise_) == ["2"] and net.noise_layers == ["2"]


def test_the_moved_noise_gives_the_same_network_in_distribution():
    """The pre-activations of the layer after the site: same mean and covariance."""
    from structnoise.evaluation.stacked import noise_through_linear

    rng = np.random.default_rng(1)
    a = rng.standard_normal((32, 32))
    sigma = a @ a.T / 32
    x = torch.rand(1, 1, 4, 4)
    samples = {}
    for moved in (False, True):
        module = _site_net()
        noise = StructuredNoiseFitter(random_state=3).fit_covariance(sigma)
        net = NoisyNeuralNetClassifier(module, noise={"1": noise}, noise_layers="1",
                                       train_split=None).initialize()
        net.fit_noise(None)
        if moved:
            noise_through_linear(net, "1", x)
        seen = []
        handle = module[2].register_forward_hook(
            lambda m, i, o, seen=seen: seen.append(o.detach()))
        with torch.no_grad():
            module(x.repeat(20000, 1, 1, 1))
        handle.remove()
        samples[moved] = seen[0].reshape(20000, -1).double().numpy()
    mean_gap = np.abs(samples[True].mean(0) - samples[False].mean(0)).max()
    cov_a, cov_b = np.cov(samples[False].T), np.cov(samples[True].T)
    assert mean_gap < 0.05
    assert np.linalg.norm(cov_a - cov_b) / np.linalg.norm(cov_a) < 0.05


class _Killed(Exception):
    pass


def test_a_stack_killed_after_an_epoch_resumes_to_the_same_weights(setup, tmp_path):
    from structnoise.evaluation.store import ResultStore

    settings, base, plans, noises, (X, y, _, _) = setup
    settings = dataclasses.replace(settings, noise_epochs=3)
    trainer = StackedTrainer()
    whole = trainer.train_networks(settings, plans, base, noises, X, y, order_seed=3)

    class KilledAfter(ResultStore):
        """A store whose run is killed once epoch ``last`` is checkpointed."""

        last = 0

        def save_checkpoint(self, name, state):
            super().save_checkpoint(name, state)
            if state["epoch"] == self.last:
                raise _Killed

    store = KilledAfter(str(tmp_path), "abc")
    for last in (0, 1):  # two kills, each after one more epoch: progress each time
        store.last = last
        with pytest.raises(_Killed):
            trainer.train_networks(settings, plans, base, noises, X, y, order_seed=3,
                                   checkpoint=(store, "stack-seed0"))
        assert store.load_checkpoint("stack-seed0")["epoch"] == last
    store.last = -1
    resumed = trainer.train_networks(settings, plans, base, noises, X, y, order_seed=3,
                                     checkpoint=(store, "stack-seed0"))
    for (a, _), (b, _) in zip(whole, resumed, strict=True):
        for name, value in _weights(a).items():
            torch.testing.assert_close(_weights(b)[name], value, rtol=0, atol=0)
    # a stack of fewer networks (some stored since) takes its part of the checkpoint
    part = trainer.train_networks(settings, plans[1:3], base, noises[1:3], X, y, order_seed=3,
                                  checkpoint=(store, "stack-seed0"))
    for (a, _), (b, _) in zip(whole[1:3], part, strict=True):
        for name, value in _weights(a).items():
            torch.testing.assert_close(_weights(b)[name], value, rtol=0, atol=0)
