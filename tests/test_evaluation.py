"""structnoise.evaluation: the experiment object, its store, views and checks."""

import numpy as np
import pandas as pd
import pytest
import torch

from structnoise import NoisyNeuralNetClassifier
from structnoise.evaluation import COLUMNS, Experiment, summarise, transfer_table
from structnoise.evaluation import checks as ck
from structnoise.sources import FGSM, Corruption, LinfPGD


class TinyNet(torch.nn.Module):
    """The tests' own model: a small MLP for 1x8x8 images."""

    def __init__(self):
        super().__init__()
        self.flat = torch.nn.Flatten()
        self.fc1 = torch.nn.Linear(64, 32)
        self.act = torch.nn.Tanh()
        self.fc2 = torch.nn.Linear(32, 10)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(self.flat(x))))


@pytest.fixture(scope="module")
def data():
    from structnoise.datasets import load_digits_images

    X, y = load_digits_images()
    return X[:300], y[:300], X[300:360], y[300:360]


def make_experiment(**kw):
    net = NoisyNeuralNetClassifier(TinyNet, optimizer=torch.optim.Adam, lr=1e-2, batch_size=64,
                                   train_split=None, verbose=0, noise_ensemble=3)
    params = dict(noise_layers="act",
                  noise_sources=[FGSM(eps=0.1), Corruption("rotate", strength=2.0)],
                  eval_sources=[FGSM(eps=0.1),
                                LinfPGD(eps=0.1, nb_iter=3, eps_iter=0.1, rand_init=False),
                                Corruption("rotate", strength=2.0),
                                Corruption("gaussian_noise", 5)],
                  seeds=(0,), base_epochs=3, noise_epochs=2, eot_samples=2, verbose=0)
    params.update(kw)
    return Experiment(net, **params)


_TIMING = ["train_seconds", "eval_seconds"]


def _same_rows(a, b):
    key = ["seed", "noise_family", "noise_strength", "structure", "trace_scale", "eval_family",
           "eval_strength", "eval_protocol"]
    a = a.drop(columns=_TIMING).sort_values(key).reset_index(drop=True)
    b = b.drop(columns=_TIMING).sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


@pytest.fixture(scope="module")
def run(data):
    exp = make_experiment()
    return exp, exp.run(*data)


def test_exact_columns_and_both_protocols(run):
    exp, rows = run
    assert list(rows.columns) == COLUMNS
    assert set(rows.eval_protocol) == {"paper", "eot"}
    assert set(rows.structure) == {"none", "full", "diagonal", "isotropic"}
    assert rows.accuracy.between(0, 1).all()
    # one row per network, evaluation and protocol
    key = ["seed", "noise_family", "noise_strength", "structure", "trace_scale",
           "eval_family", "eval_strength", "eval_protocol"]
    assert not rows.duplicated(key).any()
    # structured columns, nothing to parse: strengths are numbers with a unit
    fgsm = rows[rows.eval_family == "FGSM"]
    assert (fgsm.eval_strength == 0.1).all() and (fgsm.eval_strength_unit == "eps").all()
    rot = rows[rows.eval_family == "rotate"]
    assert (rot.eval_strength == 2.0).all() and (rot.eval_strength_unit == "strength").all()
    assert (rows[rows.eval_family == "gaussian_noise"].eval_strength_unit == "severity").all()


def test_noisy_nets_eot_rows_use_more_than_one_draw(run):
    _, rows = run
    adv = rows[rows.eval_kind == "adversarial"]
    noisy = adv[adv.structure != "none"]
    assert (noisy[noisy.eval_protocol == "eot"].eot_draws > 1).all()
    assert (noisy[noisy.eval_protocol == "eot"].eot_draws == 2).all()
    assert (noisy[noisy.eval_protocol == "paper"].eot_draws == 1).all()
    assert (noisy.ensemble == 3).all()
    assert (adv[adv.structure == "none"].eot_draws == 1).all()


def test_pairing_by_kind_and_shared_networks(run):
    _, rows = run
    # attack-shaped noise is evaluated on attacks, modification-shaped on modifications
    fgsm_nets = rows[rows.noise_family == "FGSM"]
    assert set(fgsm_nets.eval_kind) == {"clean", "adversarial"}
    rot_nets = rows[rows.noise_family == "rotate"]
    assert set(rot_nets.eval_kind) == {"clean", "naturalistic"}
    # isotropic noise with a trace scale does not depend on the source: one
    # network per trace scale, evaluated on the kinds that use that scale
    iso = rows[rows.structure == "isotropic"]
    assert set(iso.noise_family) == {"any"}
    assert set(iso.trace_scale) == {2.0, 0.5}
    assert set(iso[iso.trace_scale == 2.0].eval_kind) == {"clean", "adversarial"}
    # the noise-free network: every source
    assert set(rows[rows.structure == "none"].eval_family) == {
        "clean", "FGSM", "LinfPGD", "rotate", "gaussian_noise"}


@pytest.mark.slow
def test_runs_are_deterministic_and_n_jobs_does_not_matter(data, run):
    _, rows = run
    _same_rows(make_experiment().run(*data), rows)
    _same_rows(make_experiment(n_jobs=2).run(*data), rows)


def test_resume_after_interruption_computes_nothing_twice(data, run, tmp_path, monkeypatch):
    from structnoise.evaluation import experiment as mod

    _, full = run
    real = mod._run_group
    calls = []

    def interrupted(exp, group, base_state, data):
        if len(calls) == 2:
            raise KeyboardInterrupt("stopped by the test")
        calls.append(len(group))
        return real(exp, group, base_state, data)

    monkeypatch.setattr(mod, "_run_group", interrupted)
    exp = make_experiment(store=tmp_path)
    with pytest.raises(KeyboardInterrupt):
        exp.run(*data)
    finished = sum(calls)
    stored = pd.read_csv(next(tmp_path.glob("*/results.csv")))
    assert stored.groupby(["noise_family", "structure", "trace_scale"], dropna=False).ngroups \
        == finished
    monkeypatch.setattr(mod, "_run_group", real)
    exp2 = make_experiment(store=tmp_path)
    rows = exp2.run(*data)
    n_nets = full.groupby(["noise_family", "noise_strength", "structure", "trace_scale"],
                          dropna=False).ngroups
    # the base network is cached, the finished networks are not trained again
    assert exp2.n_networks_trained_ == n_nets - finished
    _same_rows(rows, full)
    exp3 = make_experiment(store=tmp_path)
    exp3.run(*data)
    assert exp3.n_networks_trained_ == 0


def test_changed_configuration_is_kept_apart(data, tmp_path):
    a = make_experiment(store=tmp_path, structures=("none",))
    rows_a = a.run(*data)
    b = make_experiment(store=tmp_path, structures=("none",), eot_samples=3)
    rows_b = b.run(*data)
    assert a.config_hash_ != b.config_hash_
    assert len(list(tmp_path.iterdir())) == 2
    assert b.n_networks_trained_ == 2  # its own base and network: nothing reused
    assert len(rows_a) == len(rows_b)
    # n_jobs and verbose do not change results: same configuration
    c = make_experiment(store=tmp_path, structures=("none",), n_jobs=2, verbose=1)
    c.run(*data)
    assert c.config_hash_ == a.config_hash_ and c.n_networks_trained_ == 0
    # other data: another configuration
    X, y, Xt, yt = data
    d = make_experiment(store=tmp_path, structures=("none",))
    d.run(X[:200], y[:200], Xt, yt)
    assert d.config_hash_ != a.config_hash_


def test_views(run):
    _, rows = run
    s = summarise(rows)
    assert {"mean", "ci", "n_seeds"} <= set(s.columns)
    assert (s.n_seeds == 1).all() and s.ci.isna().all()
    t = transfer_table(rows, eval_kind="naturalistic")
    assert ("rotate", 2.0, "full") in t.index
    none = rows[(rows.structure == "none") & (rows.eval_family == "rotate")
                & (rows.eval_protocol == "paper")].accuracy.mean()
    assert float(t.xs("none", level=0)[("rotate", 2.0)].iloc[0]) == pytest.approx(none)
    full = rows[(rows.structure == "full") & (rows.noise_family == "rotate")
                & (rows.eval_family == "gaussian_noise") & (rows.eval_protocol == "paper")]
    assert t.loc[("rotate", 2.0, "full"), ("gaussian_noise", 5.0)] == pytest.approx(
        float(full.accuracy.iloc[0]))


@pytest.mark.parametrize("kw,match", [
    (dict(structures=("full", "banded")), "structures"),
    (dict(protocols=("paper", "honest")), "protocols"),
    (dict(pairing="nearest"), "pairing"),
    (dict(eot_samples=0), "eot_samples"),
    (dict(noise_epochs=0), "noise_epochs"),
    (dict(trace_scales=(-1.0,)), "trace scales"),
    (dict(eval_sources=[]), "eval_sources"),
    (dict(noise_sources=["fgsm"]), "not a structnoise source"),
    (dict(seeds=()), "seeds"),
    (dict(noise_sources=[FGSM(eps=0.1), FGSM(eps=0.1, random_state=1)]), "same family"),
    (dict(eval_sources=[LinfPGD(eps=0.1, nb_iter=3), LinfPGD(eps=0.1, nb_iter=9)]),
     "same family"),
])
def test_bad_configuration_before_any_training(data, kw, match):
    exp = make_experiment(**kw)
    with pytest.raises((ValueError, TypeError), match=match):
        exp.run(*data)
    assert not hasattr(exp, "results_")


def test_transfer_matrix_is_a_view_of_the_experiment(data):
    from structnoise import StructuredNoiseFitter
    from structnoise.scoring import transfer_matrix

    X, y, Xt, yt = data
    net = NoisyNeuralNetClassifier(TinyNet, noise=StructuredNoiseFitter(), noise_layers="act",
                                   max_epochs=4, lr=1e-2, optimizer=torch.optim.Adam,
                                   train_split=None, verbose=0)
    rot = Corruption("rotate", strength=2.0)
    m = transfer_matrix(net, X, y, {"rot": rot}, {"rot": rot}, X_eval=Xt, y_eval=yt)
    exp = Experiment(net.set_params(noise=None, noise_layers=None), "act", [rot], [rot],
                     structures=("none", "full", "isotropic"), trace_scales=(None,),
                     noise=StructuredNoiseFitter(), pairing="all", protocols=("eot",),
                     eot_samples=8, seeds=(0,), base_epochs=2, noise_epochs=2, verbose=0)
    rows = exp.run(X, y, Xt, yt)
    full = rows[(rows.structure == "full") & (rows.eval_family == "rotate")].accuracy
    assert m.loc["rot", "rot"] == pytest.approx(float(full.iloc[0]))
    assert list(m.index) == ["none", "rot", "rot [isotropic]"]


# ----------------------------------------------------------------- checks
class MaskedNet(torch.nn.Module):
    """Gradient masking: the input is quantised (zero gradient almost everywhere)."""

    def __init__(self, base):
        super().__init__()
        self.base = base

    def forward(self, x):
        return self.base(torch.round(x * 4) / 4)


class RandomNet(torch.nn.Module):
    """Large hidden noise: predictions change from call to call."""

    def __init__(self, base):
        super().__init__()
        self.base = base

    def forward(self, x):
        h = self.base.act(self.base.fc1(self.base.flat(x)))
        return self.base.fc2(h + 3 * torch.randn_like(h))


@pytest.fixture(scope="module")
def sound(data):
    X, y, Xt, yt = data
    torch.manual_seed(0)
    net = NoisyNeuralNetClassifier(TinyNet, optimizer=torch.optim.Adam, lr=1e-2,
                                   max_epochs=20, train_split=None, verbose=0).fit(X, y)
    return net.module_.eval(), Xt[:40], yt[:40]


def test_checks_pass_a_sound_network(sound):
    model, X, y = sound
    frame = ck.run_checks(model, X, y, eps=0.1, nb_iter=10, square_iter=50)
    assert list(frame.check) == ["randomness", "budget_to_zero", "more_iterations",
                                 "eot_stronger", "gradient_free_weaker", "unbounded"]
    assert frame.passed.all(), frame[["check", "detail"]].to_string()


def test_checks_flag_gradient_masking(sound):
    model, X, y = sound
    masked = MaskedNet(model)
    assert not ck.check_budget_to_zero(masked, X, y)["passed"]
    assert not ck.check_unbounded(masked, X, y)["passed"]
    assert not ck.check_gradient_free_weaker(masked, X, y, square_iter=200)["passed"]


def test_randomness_check_flags_a_random_net_evaluated_without_eot(sound):
    model, X, _ = sound
    noisy = RandomNet(model)
    assert not ck.check_randomness(noisy, X, eot_samples=1)["passed"]
    assert ck.check_randomness(noisy, X, eot_samples=8)["passed"]
    record = ck.check_randomness(model, X)
    assert record["passed"] and record["accuracies"] == [0.0]


def test_iteration_and_eot_checks_flag_when_the_stronger_attack_does_worse(sound, monkeypatch):
    model, X, y = sound
    rising = iter([0.30, 0.50])
    monkeypatch.setattr(ck, "_attack_accuracy", lambda *a: next(rising))
    assert not ck.check_more_iterations(model, X, y)["passed"]
    monkeypatch.undo()
    # EOT weaker than one draw: flagged; stronger: passes (the single-draw
    # accuracy of this deterministic model is measured, EOT's is rigged)
    single = ck.check_eot_stronger(model, X, y)["accuracies"][0]
    monkeypatch.setattr(ck, "_attack_accuracy", lambda *a: single + 0.2)
    assert not ck.check_eot_stronger(model, X, y)["passed"]
    monkeypatch.setattr(ck, "_attack_accuracy", lambda *a: max(single - 0.2, 0.0))
    assert ck.check_eot_stronger(model, X, y)["passed"]


def test_experiment_runs_the_checks_on_every_network_kind(data):
    exp = make_experiment(checks=dict(n_images=20, nb_iter=2, eot_samples=2, square_iter=5))
    exp.run(*data)
    kinds = set(map(tuple, exp.checks_[["structure", "noise_family"]].values))
    assert kinds == {("none", "none"), ("full", "FGSM"), ("diagonal", "FGSM"),
                     ("isotropic", "any")}
    assert set(exp.checks_.check) == {"randomness", "budget_to_zero", "more_iterations",
                                      "eot_stronger", "gradient_free_weaker", "unbounded"}


@pytest.mark.slow
def test_dask_backend_gives_the_same_rows(data, run):
    distributed = pytest.importorskip("distributed", reason="the dask extra")
    from joblib import parallel_backend

    _, rows = run
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        with parallel_backend("dask"):
            on_dask = make_experiment(n_jobs=2).run(*data)
    _same_rows(on_dask, rows)


def test_augmentation_baselines_alone_and_with_the_noise(data):
    from structnoise.sources import GaussianNoise

    exp = make_experiment(structures=("none", "full"),
                          augmentations=[(LinfPGD(eps=0.1, nb_iter=2, eps_iter=0.05), 0.5),
                                         (GaussianNoise(0.2), 1.0)])
    rows = exp.run(*data)
    aug = rows[rows.train_family != "standard"]
    assert set(map(tuple, aug[["train_family", "train_strength", "train_ratio"]]
                   .drop_duplicates().values)) == {("LinfPGD", 0.1, 0.5),
                                                   ("GaussianNoise", 0.2, 1.0)}
    # alone (no noise) and combined with the full noise of the first source
    assert set(map(tuple, aug[["structure", "noise_family"]].drop_duplicates().values)) == {
        ("none", "none"), ("full", "FGSM")}
    # every evaluation source, both kinds
    assert set(aug.eval_kind) == {"clean", "adversarial", "naturalistic"}
    std = rows[rows.train_family == "standard"]
    assert (std.train_ratio == 0).all() and std.train_strength.isna().all()
    from structnoise.evaluation.report import baseline_table

    header, table = baseline_table(rows, "paper")
    assert header[:2] == ["training", "noise"] and len(table) == 6


def test_train_source_is_applied_to_the_batch():
    from structnoise.sources import GaussianNoise

    seen = []

    class Spy(TinyNet):
        def forward(self, x):
            seen.append(x.detach().clone())
            return super().forward(x)

    X = np.full((64, 1, 8, 8), 0.5, dtype=np.float32)
    y = np.arange(64) % 10
    NoisyNeuralNetClassifier(Spy, train_source=GaussianNoise(0.1, random_state=0),
                             train_source_ratio=0.25, max_epochs=1, batch_size=64,
                             train_split=None, verbose=0).fit(X, y)
    batch = seen[0]
    changed = (batch != 0.5).flatten(1).any(1)
    assert int(changed.sum()) == 16  # a quarter of the batch
    with pytest.raises(ValueError, match="train_source_ratio"):
        NoisyNeuralNetClassifier(Spy, train_source=GaussianNoise(0.1), train_source_ratio=0,
                                 max_epochs=1, verbose=0).fit(X, y)


def test_matched_pairing_evaluates_attack_noise_at_its_own_eps(data):
    exp = make_experiment(structures=("none", "full"), pairing="matched",
                          noise_sources=[FGSM(eps=0.1), FGSM(eps=0.2)],
                          eval_sources=[FGSM(eps=0.1), FGSM(eps=0.2),
                                        Corruption("rotate", strength=2.0)])
    plans = exp._plan()
    by_family = {(p.family, p.strength, p.structure): p.evals for p in plans}
    assert by_family[("FGSM", 0.1, "full")] == [0]
    assert by_family[("FGSM", 0.2, "full")] == [1]
    none = next(p for p in plans if p.structure == "none")
    assert none.evals == [0, 1, 2]
