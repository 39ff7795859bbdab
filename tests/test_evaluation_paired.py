"""structnoise.evaluation.paired and adequacy: paired intervals, verdicts, undertrained networks."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from structnoise.evaluation import COLUMNS
from structnoise.evaluation.adequacy import adequacy_table, undertrained_conditions
from structnoise.evaluation.paired import (
    UNDERTRAINED,
    combine,
    condition_key,
    paired_differences,
    t_interval,
    verdict,
)
from structnoise.evaluation.report import claim_tables


def synthetic(effects, seeds=(0, 1, 2, 3), jitter=0.005, offsets=None, protocols=("paper",)):
    """Rows with known per-seed accuracies: a seed offset shared by every condition.

    ``effects``: structure -> accuracy added to the seed's offset on the attacks.
    """
    rng = np.random.default_rng(0)
    offsets = rng.uniform(0.2, 0.6, len(seeds)) if offsets is None else offsets
    conditions = [("none", "none", "none", "any", np.nan, np.nan),
                  ("full", "FGSM", "fgsm", "adversarial", 0.1, 2.0),
                  ("diagonal", "FGSM", "fgsm", "adversarial", 0.1, 2.0),
                  ("isotropic", "any", "any", "any", np.nan, 2.0)]
    evals = [("clean", "clean", "clean", np.nan), ("FGSM", "fgsm", "adversarial", 0.1),
             ("LinfPGD", "pgd", "adversarial", 0.1)]
    rows = []
    for seed, offset in zip(seeds, offsets, strict=True):
        for structure, family, label, kind, strength, ts in conditions:
            for efam, elabel, ekind, estrength in evals:
                base = 0.98 if ekind == "clean" else offset + effects.get(structure, 0.0)
                for protocol in protocols:
                    rows.append(dict.fromkeys(COLUMNS, 0) | {
                        "seed": seed, "noise_family": family, "noise_label": label,
                        "noise_kind": kind, "noise_strength": strength, "structure": structure,
                        "trace_scale": ts, "train_family": "standard",
                        "train_strength": np.nan, "train_ratio": 0.0, "eval_family": efam,
                        "eval_label": elabel, "eval_kind": ekind, "eval_strength": estrength,
                        "eval_strength_unit": "eps", "eval_protocol": protocol,
                        "accuracy": base + rng.normal(0, jitter)})
    return pd.DataFrame(rows)


def test_paired_interval_is_the_t_interval_of_the_per_seed_differences():
    rows = synthetic({"full": 0.2, "isotropic": 0.1})
    diffs = paired_differences(rows)
    r = diffs[(diffs.eval_label == "fgsm") & (diffs.comparison == "full - identity")].iloc[0]
    # the naive computation: per-seed differences, then a t-interval
    a = rows[(rows.structure == "full") & (rows.eval_label == "fgsm")].sort_values("seed")
    b = rows[(rows.structure == "isotropic") & (rows.eval_label == "fgsm")].sort_values("seed")
    d = a.accuracy.to_numpy() - b.accuracy.to_numpy()
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    assert r["mean"] == pytest.approx(d.mean())
    assert (r["low"], r["high"]) == pytest.approx((d.mean() - half, d.mean() + half))
    assert r["verdict"] == "supported" and r["matched"]
    assert np.allclose(r["per_seed"], d)


def test_pairing_removes_the_spread_of_the_base_networks():
    """Seed offsets 0.2-0.6 swamp a 0.05 effect in unpaired means, not in paired differences."""
    rows = synthetic({"full": 0.05}, jitter=0.002)
    r = paired_differences(rows)
    r = r[(r.eval_label == "fgsm") & (r.comparison == "full - none")].iloc[0]
    assert r["verdict"] == "supported"
    full = rows[(rows.structure == "full") & (rows.eval_label == "fgsm")].accuracy
    none = rows[(rows.structure == "none") & (rows.eval_label == "fgsm")].accuracy
    unpaired = stats.ttest_ind(full, none)
    assert unpaired.pvalue > 0.05  # the same data, compared unpaired: no evidence


def test_three_way_verdicts_and_their_combination():
    assert verdict(0.01, 0.1, 3) == "supported"
    assert verdict(-0.1, -0.01, 3) == "contradicted"
    assert verdict(-0.1, 0.1, 3) == "inconclusive"
    assert verdict(0.1, 0.2, 1) == "inconclusive"   # one seed: no interval
    assert combine(["supported"] * 3 + ["inconclusive"]) == "supported"
    assert combine(["supported", "inconclusive", "inconclusive"]) == "inconclusive"
    assert combine(["supported", "supported", "contradicted"]) == "inconclusive"
    assert combine(["contradicted", "inconclusive"]) == "contradicted"
    assert combine([UNDERTRAINED, UNDERTRAINED]) == UNDERTRAINED
    assert combine([UNDERTRAINED, "supported"]) == "supported"
    assert combine([]) == "not measured"
    mean, low, high = t_interval([0.5])
    assert mean == 0.5 and np.isnan(low) and np.isnan(high)


def test_claims_follow_the_paired_comparisons():
    better = claim_tables(synthetic({"full": 0.2, "diagonal": 0.15, "isotropic": 0.1}))
    assert better["paper"][1][2] == "supported"   # claim 1
    assert better["paper"][3][2] == "supported"   # claim 3: fgsm noise on pgd
    worse = claim_tables(synthetic({"full": -0.2, "isotropic": 0.1}))
    assert worse["paper"][1][2] == "contradicted"
    assert "rule:" in worse["paper"][1][3] and "weakest part" in worse["paper"][1][3]


def test_a_joined_claim_is_its_weakest_part():
    """Claim 1 once read "supported" when full - none carried it and full - identity did not."""
    from structnoise.evaluation.paired import weakest

    claims = claim_tables(synthetic({"full": 0.2, "isotropic": 0.2}, jitter=0.02))
    _, _, claim, _, parts = claims["paper"][1]
    by_part = {name.split(" (")[0]: v for name, v, _ in parts}
    assert by_part["full noise beats no noise"] == "supported"
    assert by_part["full noise beats identity noise on attacks"] == "inconclusive"
    assert by_part["full noise beats identity noise on modifications"] == "not measured"
    assert claim == "inconclusive"
    assert weakest(["supported", UNDERTRAINED]) == UNDERTRAINED
    assert weakest(["contradicted", "inconclusive", "supported"]) == "contradicted"
    assert weakest(["not measured"]) == "not measured"


def test_an_undertrained_condition_is_never_evidence_against_a_claim():
    rows = synthetic({"full": -0.2, "isotropic": 0.1})
    rows.loc[(rows.structure == "full") & (rows.eval_kind == "clean"), "accuracy"] = 0.41
    references = {condition_key("none", "none", None): 0.98,
                  condition_key("full", "fgsm", 2.0): 0.97,
                  condition_key("diagonal", "fgsm", 2.0): 0.97,
                  condition_key("isotropic", "any", 2.0): 0.97}
    table = adequacy_table(rows, references)
    status = dict(zip(table.structure, table.status, strict=True))
    assert status == {"none": "adequate", "full": "undertrained", "diagonal": "adequate",
                      "isotropic": "adequate"}
    assert undertrained_conditions(table) == {("full", "fgsm", "2.0")}
    claims = claim_tables(rows, references)
    assert claims["paper"][1][2] == UNDERTRAINED
    assert all(UNDERTRAINED in cell for row in claims["paper"][1][1] for cell in row[5:7])


def test_adequacy_tolerances_and_missing_references():
    rows = synthetic({})
    ref = {condition_key("none", "none", None): 0.985}
    table = adequacy_table(rows, ref)
    none = table[table.structure == "none"].iloc[0]
    assert none.status == "adequate" and none.gap == pytest.approx(none.clean - 0.985)
    assert (table[table.structure != "none"].status == "no reference").all()
    strict = adequacy_table(rows, {condition_key("none", "none", None): 0.995})
    assert strict[strict.structure == "none"].status.iloc[0] == "undertrained"
    assert (adequacy_table(rows, None).status == "no reference").all()
