"""structnoise.evaluation.experiment: the protocol end to end, validation before any work."""

import numpy as np
import pandas as pd
import pytest
import torch
from evaluation_helpers import TinyNet, digits, make_experiment, same_rows

from structnoise import NoisyNeuralNetClassifier
from structnoise.evaluation import COLUMNS, Experiment
from structnoise.sources import FGSM, Corruption, LinfPGD


def test_exact_columns_and_both_protocols(small_run):
    exp, rows = small_run
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


def test_noisy_nets_eot_rows_use_more_than_one_draw(small_run):
    _, rows = small_run
    adv = rows[rows.eval_kind == "adversarial"]
    noisy = adv[adv.structure != "none"]
    assert (noisy[noisy.eval_protocol == "eot"].eot_draws > 1).all()
    assert (noisy[noisy.eval_protocol == "eot"].eot_draws == 2).all()
    assert (noisy[noisy.eval_protocol == "paper"].eot_draws == 1).all()
    assert (noisy.ensemble == 3).all()
    assert (adv[adv.structure == "none"].eot_draws == 1).all()


def test_pairing_by_kind_and_shared_networks(small_run):
    _, rows = small_run
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
        "clean", "FGSM", "LinfPGD", "rotate", "gaussian_noise", "worst_case"}


@pytest.mark.slow
def test_runs_are_deterministic_and_n_jobs_does_not_matter(digits_data, small_run):
    _, rows = small_run
    same_rows(make_experiment().run(*digits_data), rows)
    same_rows(make_experiment(n_jobs=2).run(*digits_data), rows)


def test_every_seed_in_one_stack_only_on_a_gpu_without_parallel_jobs():
    from structnoise.evaluation.experiment import _seeds_together

    assert _seeds_together("stacked", 1, "cuda") and _seeds_together("stacked", None, "cuda:0")
    assert not _seeds_together("stacked", 1, "cpu")
    assert not _seeds_together("stacked", 2, "cuda")
    assert not _seeds_together("sequential", 1, "cuda")


def test_the_seeds_in_one_stack_give_the_rows_of_each_seed_run_alone(monkeypatch):
    import structnoise.evaluation.experiment as experiment
    from structnoise.evaluation.presets import _digits28
    from structnoise.models import PaperCNN
    from structnoise.sources import GaussianNoise

    data = _digits28(320, 40)()
    net = NoisyNeuralNetClassifier(PaperCNN, optimizer=torch.optim.Adam, lr=1e-3, batch_size=64,
                                   train_split=None, noise_ensemble=2, verbose=0,
                                   iterator_train__shuffle=True)

    def run(seeds):
        exp = Experiment(net, "body.tanh2", [GaussianNoise(0.3)], [GaussianNoise(0.3)],
                         structures=("none", "full"), protocols=("paper",), seeds=seeds,
                         base_epochs=1, noise_epochs=2, engine="stacked", verbose=0)
        return exp.run(*data)

    alone = pd.concat([run((0,)), run((1,))], ignore_index=True)
    # one stack of both seeds' networks (a GPU's way), each on its seed's front and order
    monkeypatch.setattr(experiment, "_seeds_together", lambda *args: True)
    calls = []
    train = experiment.StackedTrainer.train_networks

    def spy(self, settings, plans, *args, **kwargs):
        calls.append(sorted({p.seed for p in plans}))
        return train(self, settings, plans, *args, **kwargs)

    monkeypatch.setattr(experiment.StackedTrainer, "train_networks", spy)
    same_rows(run((0, 1)), alone)
    assert calls == [[0, 1]]


def test_changed_configuration_is_kept_apart(digits_data, tmp_path):
    a = make_experiment(store=tmp_path, structures=("none",))
    rows_a = a.run(*digits_data)
    b = make_experiment(store=tmp_path, structures=("none",), eot_samples=3)
    rows_b = b.run(*digits_data)
    assert a.config_hash_ != b.config_hash_
    assert len(list(tmp_path.iterdir())) == 2
    assert b.n_networks_trained_ == 2  # its own base and network: nothing reused
    assert len(rows_a) == len(rows_b)
    # n_jobs and verbose do not change results: same configuration
    c = make_experiment(store=tmp_path, structures=("none",), n_jobs=2, verbose=1)
    c.run(*digits_data)
    assert c.config_hash_ == a.config_hash_ and c.n_networks_trained_ == 0
    # other data: another configuration
    X, y, Xt, yt = digits_data
    d = make_experiment(store=tmp_path, structures=("none",))
    d.run(X[:200], y[:200], Xt, yt)
    assert d.config_hash_ != a.config_hash_


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
def test_bad_configuration_before_any_training(digits_data, kw, match):
    exp = make_experiment(**kw)
    with pytest.raises((ValueError, TypeError), match=match):
        exp.run(*digits_data)
    assert not hasattr(exp, "results_")


def test_experiment_runs_the_checks_on_every_network_kind(digits_data):
    exp = make_experiment(checks=dict(n_images=20, nb_iter=2, eot_samples=2, square_iter=5))
    exp.run(*digits_data)
    kinds = set(map(tuple, exp.checks_[["structure", "noise_family"]].values))
    assert kinds == {("none", "none"), ("full", "FGSM"), ("diagonal", "FGSM"),
                     ("isotropic", "any")}
    assert set(exp.checks_.check) == {"randomness", "budget_to_zero", "more_iterations",
                                      "eot_stronger", "gradient_free_weaker", "unbounded"}


@pytest.mark.slow
def test_dask_backend_gives_the_same_rows(digits_data, small_run):
    distributed = pytest.importorskip("distributed", reason="the dask extra")
    from joblib import parallel_backend

    _, rows = small_run
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        with parallel_backend("dask"):
            on_dask = make_experiment(n_jobs=2).run(*digits_data)
    same_rows(on_dask, rows)


def test_augmentation_baselines_alone_and_with_the_noise(digits_data):
    from structnoise.sources import GaussianNoise

    exp = make_experiment(structures=("none", "full"),
                          augmentations=[(LinfPGD(eps=0.1, nb_iter=2, eps_iter=0.05), 0.5),
                                         (GaussianNoise(0.2), 1.0)])
    rows = exp.run(*digits_data)
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
    batch = next(b for b in seen if len(b) == 64)  # the first training batch, not the probe
    changed = (batch != 0.5).flatten(1).any(1)
    assert int(changed.sum()) == 16  # a quarter of the batch
    with pytest.raises(ValueError, match="train_source_ratio"):
        NoisyNeuralNetClassifier(Spy, train_source=GaussianNoise(0.1), train_source_ratio=0,
                                 max_epochs=1, verbose=0).fit(X, y)


# ------------------------------------------------- rows unchanged by the rebuild
GOLDEN = ["seed", "noise_family", "noise_strength", "structure", "trace_scale", "eval_family",
          "eval_strength", "eval_protocol"]


def test_rows_and_checks_equal_those_of_the_engine_before_its_restructure(digits_data):
    """tests/data/golden_*.csv were written by the engine of 390bc21 on this configuration."""
    from pathlib import Path

    exp = make_experiment(seeds=(0, 1),
                          checks=dict(n_images=20, nb_iter=2, eot_samples=2, square_iter=5))
    rows = exp.run(*digits_data)
    rows = rows[rows.eval_family != "worst_case"]  # derived rows, added since
    here = Path(__file__).parent / "data"
    old = pd.read_csv(here / "golden_rows.csv").fillna({"eval_strength_unit": ""})
    new = rows[list(old.columns)]
    old, new = (f.sort_values(GOLDEN).reset_index(drop=True) for f in (old, new))
    pd.testing.assert_frame_equal(new, old, check_dtype=False)
    old_checks = pd.read_csv(here / "golden_checks.csv")
    keys = ["seed", "noise_family", "structure", "check"]
    new_checks = exp.checks_[list(old_checks.columns)].sort_values(keys).reset_index(drop=True)
    old_checks = old_checks.sort_values(keys).reset_index(drop=True)
    assert list(new_checks.accuracies) == list(old_checks.accuracies)
    assert list(new_checks.passed) == list(old_checks.passed)


def test_the_callers_random_streams_are_neither_seeded_nor_advanced(digits_data):
    # the legacy global streams are what is under test here
    torch.manual_seed(123)
    np.random.seed(123)  # noqa: NPY002
    expected_torch, expected_numpy = torch.rand(3), np.random.rand(3)  # noqa: NPY002
    torch.manual_seed(123)
    np.random.seed(123)  # noqa: NPY002
    make_experiment(structures=("none", "full")).run(*digits_data)
    assert torch.equal(torch.rand(3), expected_torch)
    assert np.array_equal(np.random.rand(3), expected_numpy)  # noqa: NPY002


# ------------------------------------------------------------- identity, labels
def test_two_configurations_of_one_family_and_strength_side_by_side(digits_data):
    pgd = {"pgd3": LinfPGD(eps=0.1, nb_iter=3, eps_iter=0.1, rand_init=False),
           "pgd1": LinfPGD(eps=0.1, nb_iter=1, eps_iter=0.1, rand_init=False)}
    exp = make_experiment(noise_sources=pgd, eval_sources=pgd, structures=("none", "full"))
    rows = exp.run(*digits_data)
    full = rows[(rows.structure == "full") & (rows.eval_kind == "adversarial")
                & (rows.eval_family != "worst_case")]
    assert set(full.noise_label) == {"pgd3", "pgd1"}
    assert set(full.eval_label) == {"pgd3", "pgd1"}
    assert (full.eval_family == "LinfPGD").all() and (full.eval_strength == 0.1).all()
    assert not rows.duplicated(["noise_label", "structure", "eval_label", "eval_protocol"]).any()


def test_a_source_describes_itself_and_a_new_one_can_say_its_strength():
    from structnoise.evaluation import describe_source
    from structnoise.sources import GaussianNoise

    class Blur(GaussianNoise):
        """A user's source whose strength is called sigma."""

        strength_param = "std"

    d = describe_source(Blur(std=0.3))
    assert (d["family"], d["strength"], d["strength_unit"], d["label"]) == (
        "Blur", 0.3, "std", "Blur(std=0.3)")
    assert describe_source(None)["label"] == "clean"


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("kw,match", [
    (dict(noise_layers="no.such.layer"), "no.such.layer"),
    (dict(noise_layers=None), "noise_layers is required"),
    (dict(noise_sources={"": FGSM(eps=0.1)}), "labels must be non-empty strings"),
    (dict(seeds=(0, 0)), "distinct"),
])
def test_bad_layers_and_sources_are_refused_before_any_training(digits_data, kw, match,
                                                                   monkeypatch):
    from structnoise.evaluation import trainer

    def no_training(*args, **kwargs):
        raise AssertionError("trained before the configuration was checked")

    monkeypatch.setattr(trainer.SequentialTrainer, "train_base", no_training)
    exp = make_experiment(**kw)
    with pytest.raises((ValueError, TypeError), match=match):
        exp.run(*digits_data)
    assert not hasattr(exp, "results_")


def test_images_that_do_not_fit_the_module_are_refused_before_any_training(digits_data):
    X, y, Xt, yt = digits_data
    with pytest.raises(ValueError, match="do not fit the module"):
        make_experiment().run(X[:, :, :4, :4], y, Xt[:, :, :4, :4], yt)
    with pytest.raises(ValueError, match="same shape"):
        make_experiment().run(X, y, Xt[:, :, :4, :4], yt)


def test_a_net_refuses_non_finite_images_before_training():
    X, y, _, _ = digits()
    X = X.copy()
    X[3, 0, 2, 2] = np.nan
    net = NoisyNeuralNetClassifier(TinyNet, max_epochs=1, train_split=None, verbose=0)
    with pytest.raises(ValueError, match="1 non-finite value"):
        net.fit(X, y)
    with pytest.raises(ValueError, match="non-finite"):
        net.partial_fit(torch.as_tensor(X), y)
    assert not hasattr(net, "history_") or not len(net.history_)


# ------------------------------------------- bad input, refused before any work
@pytest.mark.parametrize("params,error,match", [
    (dict(eval_sources=[Corruption("rotat", 2)]), ValueError,
     "eval_sources holds Corruption.*Unknown corruption 'rotat'"),
    (dict(noise_sources=[FGSM(eps=-0.1)]), ValueError,
     r"noise_sources holds FGSM\(eps=-0.1\), which is not valid"),
    (dict(eval_sources=[FGSM(eps=0.1, eot_samples=0)]), ValueError, "eot_samples"),
    (dict(seeds=0), ValueError, r"got the integer 0 \(write \(0,\)"),
    (dict(noise_epochs=True), ValueError, "noise_epochs must be a positive integer"),
    (dict(trace_scales={"adverserial": (2.0,)}), ValueError, r"keys must be source kinds"),
    (dict(eval_sources={"clean": FGSM(eps=0.1)}), ValueError, "labelled 'clean'"),
    (dict(eval_sources={"worst_case(eps=0.1)": FGSM(eps=0.1)}), ValueError,
     "the worst case over attacks"),
    (dict(checks={"n_imgs": 3}), ValueError, r"unknown key\(s\) \['n_imgs'\]"),
    (dict(noise_layers="fc2"), ValueError, "nothing to retrain"),
    (dict(y_test="out of range"), ValueError, "y_test holds labels from 10 to 19"),
    (dict(y_train="strings"), TypeError, "y_train holds <U"),
])
def test_bad_configurations_are_refused_before_any_base_network(digits_data, tmp_path, params,
                                                                error, match):
    X, y, Xt, yt = digits_data
    bad_labels = {"out of range": lambda v: v + 10, "strings": lambda v: v.astype(str)}
    if "y_test" in params:
        yt = bad_labels[params.pop("y_test")](yt)
    if "y_train" in params:
        y = bad_labels[params.pop("y_train")](y)
    exp = make_experiment(store=str(tmp_path), **params)
    with pytest.raises(error, match=match):
        exp.run(X, y, Xt, yt)
    assert not list(tmp_path.rglob("*.pt"))  # no base network was trained


def test_an_evaluation_sources_own_draws_are_said_to_be_overridden(digits_data):
    exp = make_experiment(eval_sources=[FGSM(eps=0.1, eot_samples=5)], structures=("none",),
                          base_epochs=1, noise_epochs=1)
    with pytest.warns(UserWarning, match="sets eot_samples=5; the protocols set the draws"):
        exp.run(*digits_data)
