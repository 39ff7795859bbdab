"""structnoise.evaluation.views: summaries, the transfer table and matrix are views of the rows."""

import pytest
import torch
from evaluation_helpers import TinyNet

from structnoise import NoisyNeuralNetClassifier, StructuredNoiseFitter
from structnoise.evaluation import Experiment, summarise, time_table, transfer_table
from structnoise.sources import Corruption


def test_views(small_run):
    _, rows = small_run
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


def test_time_table_counts_training_once_per_network_and_shared_evaluations_once(small_run):
    _, rows = small_run
    times = time_table(rows)
    assert times.phase.iloc[0] == "retraining"
    # the naive reference: one loop over the networks
    networks = {}
    for r in rows.itertuples(index=False):
        key = (r.seed, r.noise_label, r.structure, str(r.trace_scale), r.train_family)
        networks[key] = r.train_seconds
    assert times.seconds.iloc[0] == pytest.approx(sum(networks.values()))
    assert times.networks.iloc[0] == len(networks)
    # a naturalistic evaluation is one measurement: counted once, not per protocol
    rot = rows[rows.eval_family == "rotate"]
    once = rot.groupby(["seed", "noise_label", "structure", "trace_scale", "eval_label"],
                       dropna=False).eval_seconds.max().sum()
    row = times[(times.phase == "rotate")]
    assert len(row) == 1 and row.protocol.iloc[0] == "all"
    assert row.seconds.iloc[0] == pytest.approx(once)
    # attacks per protocol; every row's seconds accounted for exactly once
    adversarial = rows[rows.eval_kind == "adversarial"]
    for protocol, part in adversarial.groupby("eval_protocol"):
        got = times[(times.protocol == protocol)].seconds.sum()
        assert got == pytest.approx(part.eval_seconds.sum())
    assert list(times.seconds.iloc[1:]) == sorted(times.seconds.iloc[1:], reverse=True)


def test_transfer_matrix_is_a_view_of_the_experiment(digits_data):
    from structnoise import StructuredNoiseFitter
    from structnoise.evaluation import transfer_matrix

    X, y, Xt, yt = digits_data
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


def test_transfer_matrix_small():
    from structnoise.datasets import load_digits_images
    from structnoise.evaluation import transfer_matrix
    from structnoise.models import DigitsMLP
    from structnoise.sources import FGSM

    X, y = load_digits_images()
    X, y = X[:400], y[:400]
    net = NoisyNeuralNetClassifier(
        DigitsMLP, noise=StructuredNoiseFitter(random_state=0), noise_layers="body.2",
        max_epochs=3, lr=0.1, verbose=0, train_split=None)
    m = transfer_matrix(net, X, y, {"blur": Corruption("gaussian_blur", 3)},
                        {"fgsm": FGSM(eps=0.1)}, eot_samples=2)
    assert list(m.index) == ["none", "blur", "blur [isotropic]"]
    assert list(m.columns) == ["clean", "fgsm"]
    assert ((m >= 0) & (m <= 1)).all().all()
    # an attack lowers every network's accuracy below its clean accuracy
    assert (m["fgsm"] < m["clean"]).all()
