"""structnoise.evaluation.worst_case: the worst case over attacks from stored outcomes."""

import glob
import os
import warnings

import numpy as np
import pandas as pd
import pytest
from evaluation_helpers import make_experiment

from structnoise.evaluation import COLUMNS
from structnoise.evaluation.store import ResultStore, _unpack_outcomes, read_sealed
from structnoise.evaluation.worst_case import threat_models, worst_case_label, worst_case_rows
from structnoise.sources import FGSM, L2PGD, AttackEnsemble, Corruption, LinfPGD

INF = np.inf


def _rows(specs, protocol="eot", n=8):
    base = dict.fromkeys(COLUMNS, 0) | {"eval_protocol": protocol, "n_images": n,
                                        "structure": "full", "noise_label": "x",
                                        "trace_scale": 2.0, "eot_samples": 2, "eot_draws": 2}
    return pd.DataFrame([base | {"eval_label": label, "eval_kind": kind, "accuracy": acc}
                         for label, kind, acc in specs])


def test_the_worst_case_is_the_and_of_the_attacks_at_one_budget(rng):
    outcomes = {(k, "eot"): rng.random(50) < 0.7 for k in ("a", "b", "c", "d", "r")}
    rows = _rows([(k, "naturalistic" if k == "r" else "adversarial",
                   outcomes[k, "eot"].mean()) for k in ("a", "b", "c", "d", "r")], n=50)
    models = {"a": (0.1, INF), "b": (0.1, INF), "c": (0.2, INF), "d": (0.1, 2.0)}
    worst, notes = worst_case_rows(rows, outcomes, models)
    # only eps 0.1 in L-inf has two attacks; eps 0.2 and L2 have one each
    assert [w["eval_label"] for w in worst] == ["worst_case(eps=0.1)"] and not notes
    expected = (outcomes["a", "eot"] & outcomes["b", "eot"]).mean()
    assert worst[0]["accuracy"] == expected
    assert worst[0]["accuracy"] <= min(outcomes[k, "eot"].mean() for k in ("a", "b"))
    assert worst[0]["eval_family"] == "worst_case" and worst[0]["eval_strength"] == 0.1
    assert worst[0]["eval_seconds"] == 0.0 and worst[0]["structure"] == "full"


def test_a_missing_attack_gives_no_row_and_a_note_naming_it():
    rows = _rows([("a", "adversarial", 0.5), ("b", "adversarial", 0.5)], n=2)
    models = {"a": (0.1, INF), "b": (0.1, INF)}
    worst, notes = worst_case_rows(rows, {("a", "eot"): np.array([True, False])}, models)
    assert not worst and len(notes) == 1 and "no per-image outcomes for b" in notes[0]
    worst, notes = worst_case_rows(rows, None, models)  # a network stored without outcomes
    assert not worst and "a, b" in notes[0]


def test_threat_models_leave_out_corruptions_and_unbudgeted_attacks():
    from structnoise.sources import CarliniWagnerL2

    models = threat_models([("f", FGSM(eps=0.1)), ("p", L2PGD(eps=0.5)),
                            ("r", Corruption("rotate", 1)), ("cw", CarliniWagnerL2())])
    assert models == {"f": (0.1, INF), "p": (0.5, 2.0)}
    assert worst_case_label(0.5, 2.0) == "worst_case(L2, eps=0.5)"


@pytest.fixture(scope="module")
def run_with_ensemble(tmp_path_factory, digits_data):
    pgd = LinfPGD(eps=0.1, nb_iter=3, eps_iter=0.1, rand_init=False)
    evals = {"fgsm": FGSM(eps=0.1), "pgd": pgd,
             "ensemble": AttackEnsemble([FGSM(eps=0.1), pgd]),
             "fgsm.2": FGSM(eps=0.2), "rot": Corruption("rotate", strength=2.0)}
    store = tmp_path_factory.mktemp("store")
    exp = make_experiment(eval_sources=evals, structures=("none", "full", "isotropic"),
                          store=str(store))
    rows = exp.run(*digits_data)
    return exp, rows, store


def test_experiments_add_worst_case_rows_never_above_any_attack(run_with_ensemble):
    exp, rows, _ = run_with_ensemble
    worst = rows[rows.eval_family == "worst_case"]
    assert len(worst) and set(worst.eval_label) == {"worst_case(eps=0.1)"}
    assert not exp.worst_case_notes_
    network = ["seed", "noise_label", "structure", "trace_scale", "eval_protocol"]
    attacks = rows[(rows.eval_kind == "adversarial") & (rows.eval_family != "worst_case")
                   & np.isclose(rows.eval_strength, 0.1)]
    lowest = attacks.fillna({"trace_scale": -1}).groupby(network).accuracy.min()
    for r in worst.fillna({"trace_scale": -1}).itertuples(index=False):
        key = (r.seed, r.noise_label, r.structure, r.trace_scale, r.eval_protocol)
        assert r.accuracy <= lowest.loc[key]
    # every network evaluated on the attacks gets one, under each protocol
    evaluated = attacks.drop_duplicates(network)
    assert len(worst) == len(evaluated)


def test_on_the_deterministic_network_the_ensemble_equals_the_worst_case(run_with_ensemble):
    _, rows, store = run_with_ensemble
    none = rows[rows.structure == "none"]
    for protocol in ("paper", "eot"):
        part = none[none.eval_protocol == protocol].set_index("eval_label").accuracy
        assert part["ensemble"] == part["worst_case(eps=0.1)"]
        assert part["worst_case(eps=0.1)"] <= min(part["fgsm"], part["pgd"])
    # the stored outcomes are one bit per test image and agree with the rows
    files = glob.glob(os.path.join(store, "*", "outcomes", "*.npz"))
    assert files
    outcomes = _unpack_outcomes(read_sealed(files[0]))
    assert {len(v) for v in outcomes.values()} == {60}


def test_a_store_without_outcomes_keeps_its_rows_and_says_which_worst_case_is_missing(
        run_with_ensemble, digits_data):
    exp, rows, store = run_with_ensemble
    for path in glob.glob(os.path.join(store, "*", "outcomes", "*.npz")):
        os.remove(path)  # as an older version stored them
    with pytest.warns(RuntimeWarning, match="no per-image outcomes"):
        again = exp.run(*digits_data)
    assert exp.n_networks_trained_ == 0  # nothing recomputed
    assert not (again.eval_family == "worst_case").any()
    assert exp.worst_case_notes_ and all("fgsm, pgd, ensemble" in n
                                         for n in exp.worst_case_notes_)
    kept = rows[rows.eval_family != "worst_case"].reset_index(drop=True)
    pd.testing.assert_frame_equal(again.drop(columns=["train_seconds", "eval_seconds"]),
                                  kept.drop(columns=["train_seconds", "eval_seconds"]))


def test_outcomes_that_disagree_with_their_rows_count_as_damage(tmp_path):
    store = ResultStore(str(tmp_path), "abc")
    row = dict.fromkeys(COLUMNS, 0) | {"eval_label": "a", "eval_protocol": "eot",
                                       "n_images": 3, "accuracy": 2 / 3}
    store.save_network(("k",), [row], outcomes={("a", "eot"): np.array([1, 1, 0], bool)})
    rows, _, outcomes = store.load_network(("k",), 1)
    np.testing.assert_array_equal(outcomes["a", "eot"], [True, True, False])
    store.save_network(("k",), [row], outcomes={("a", "eot"): np.array([1, 0, 0], bool)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert store.load_network(("k",), 1) is None
    messages = " ".join(str(w.message) for w in caught)
    assert "disagree with its row" in messages and "outcomes are damaged" in messages


def test_an_outcomes_file_cut_at_any_byte_is_detected_and_computed_again(tmp_path):
    store = ResultStore(str(tmp_path), "abc")
    row = dict.fromkeys(COLUMNS, 0) | {"eval_label": "a", "eval_protocol": "eot",
                                       "n_images": 20, "accuracy": 0.5}
    outcomes = {("a", "eot"): np.arange(20) % 2 == 0}
    store.save_network(("k",), [row], outcomes=outcomes)
    path = glob.glob(os.path.join(tmp_path, "abc", "outcomes", "*.npz"))[0]
    with open(path, "rb") as fh:
        whole = fh.read()
    for cut in range(len(whole)):
        store.save_network(("k",), [row], outcomes=outcomes)
        with open(path, "wb") as fh:
            fh.write(whole[:cut])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert store.load_network(("k",), 1) is None, cut
        assert any("damaged" in str(w.message) for w in caught), cut
        assert not os.path.exists(path)  # removed: the network is computed again
