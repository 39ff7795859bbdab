"""structnoise.evaluation.report: every protocol in the rows reaches the tables and figures."""

import pytest
from evaluation_helpers import digits, make_experiment

from structnoise.evaluation.protocols import EOTProtocol, Protocol
from structnoise.evaluation.report import claim_tables, summary_table, write_report


class ThreeDraws(Protocol):
    """A third protocol: EOT with three draws, under its own name."""

    name = "eot3"

    def attack(self, source, net, stochastic):
        return EOTProtocol(3).attack(source, net, stochastic)


@pytest.fixture(scope="module")
def rows():
    exp = make_experiment(structures=("none", "full", "isotropic"),
                          protocols=("paper", "eot", ThreeDraws()))
    return exp.run(*digits())


def test_a_third_protocol_is_not_dropped_from_the_console_table(rows):
    table = summary_table(rows)
    assert set(table.index.get_level_values("eval_protocol")) == {"paper", "eot", "eot3"}
    assert set(claim_tables(rows)) == {"paper", "eot", "eot3"}
    eot3 = rows[(rows.eval_protocol == "eot3") & (rows.structure == "full")
                & (rows.eval_kind == "adversarial")]
    assert (eot3.eot_draws == 3).all()


def test_the_report_and_figures_are_written(rows, tmp_path):
    text = write_report("tiny", "digits", ["a test"], rows, None, str(tmp_path), 1.0,
                        "Machine: test.")
    assert "**eot3 protocol:" in text and "**paper protocol:" in text
    assert (tmp_path / "report.md").read_text() == text
    assert (tmp_path / "accuracy_vs_eps.png").exists()
    timing = text.split("## Where the time went")[1].split("## Figures")[0]
    assert "| retraining | all |" in timing
    # the rest of the run is the run's 1 s less the rows' seconds; never negative
    from structnoise.evaluation import time_table

    rest = 1.0 - time_table(rows).seconds.sum()
    assert ("The rest of the run" in timing) == (rest >= 0)
    assert ("less than their sum" in timing) == (rest < 0)


def test_report_states_adequacy_and_draws_the_paired_differences(tmp_path):
    from test_evaluation_paired import synthetic

    from structnoise.evaluation.paired import condition_key

    rows = synthetic({"full": 0.2, "diagonal": 0.1, "isotropic": 0.05}, protocols=("paper", "eot"))
    refs = {condition_key("none", "none", None): 0.98}
    text = write_report("synthetic", "MNIST", [], rows, None, str(tmp_path), 1.0,
                        references=refs)
    adequacy = text.split("## Adequacy")[1].split("## Claim 1")[0]
    assert "| none | none |  | 4 |" in adequacy and "adequate" in adequacy
    assert "no reference" in adequacy
    assert "**paper protocol: supported.**" in text.split("## Claim 1:")[1]
    assert (tmp_path / "paired_differences.png").stat().st_size > 0
    none = write_report("synthetic", "MNIST", [], rows, None, str(tmp_path), 1.0)
    assert "no adequacy verdict is made" in none


def test_the_worst_case_reaches_claim_1_its_own_section_and_the_forest_plot(rows, tmp_path):
    from structnoise.evaluation.paired import paired_differences

    text = write_report("tiny", "digits", [], rows, None, str(tmp_path), 1.0,
                        worst_case_notes=["worst_case(eps=0.3) under eot not computed: x"])
    claim1 = text.split("## Claim 1:")[1].split("## Claim 2:")[0]
    for protocol in ("paper", "eot", "eot3"):
        table = claim1.split(f"**{protocol} protocol:")[1].split("\n\n**")[0]
        assert "| worst_case(eps=0.1), noise from FGSM(eps=0.1) (tr=2) |" in table
    # the worst case holds the noise's own attack: no transfer claim rests on it
    assert "worst_case" not in text.split("## Claim 3:")[1].split("## Robust accuracy")[0]
    section = text.split("## Robust accuracy: the worst case over attacks")[1]
    assert "**worst_case(eps=0.1)** over FGSM(eps=0.1), LinfPGD(eps=0.1)." in section
    assert "worst_case(eps=0.3) under eot not computed: x." in text
    # the forest plot draws every paired difference, the worst case's included
    diffs = paired_differences(rows)
    assert (diffs.eval_label == "worst_case(eps=0.1)").any()
    assert (tmp_path / "paired_differences.png").exists()


def test_on_fashion_mnist_each_paper_number_is_held_against_our_interval(tmp_path):
    from test_evaluation_paired import synthetic

    from structnoise.evaluation.presets import PAPER_NUMBERS
    from structnoise.evaluation.report import paper_comparison

    rows = synthetic({"full": 0.2, "diagonal": 0.1, "isotropic": 0.05},
                     protocols=("paper", "eot"))
    table = paper_comparison(rows)
    full, diag, iso, none = PAPER_NUMBERS[("FGSM", 0.1)]
    for protocol in ("paper", "eot"):
        part = table[table.eval_protocol == protocol].set_index("quantity")
        assert set(part.index) == {"Full", "Diagonal", "Identity", "None", "Full - Identity",
                                   "Full - None"}
        for quantity, paper in (("Full", full), ("None", none),
                                ("Full - Identity", full - iso)):
            r = part.loc[quantity]
            assert r.paper == pytest.approx(paper)
            expected = "above" if paper > r.high else "below" if paper < r.low else "inside"
            assert r.paper_is == expected
        # the paper's full - none is positive, ours supported: the same direction
        assert part.loc["Full - None", "direction"] == "same"
        assert set(part.kind) == {"attack"}
    text = write_report("s", "FashionMNIST", ["3 seeds"], rows, None, str(tmp_path), 1.0)
    section = text.split("## The paper's numbers against ours")[1].split("\n## ")[0]
    assert "**paper protocol**" in section and "**eot protocol**" in section
    assert "| FGSM eps 0.1 | Full - None |" in section and "reductions" in section
    # the summary per claim, part by part: full - none reproduces (the paper's
    # sign, supported here); the synthetic rows hold no modification
    for protocol in ("paper", "eot"):
        claim = section.split(f"- Claim 1, {protocol} protocol: ")[1].split("\n")[0]
        assert claim.startswith("Full - None: reproduces (the paper's sign in 1 of 1)")
        assert "Full - Identity on the modifications: not measured" in claim
        inside = (table[(table.eval_protocol == protocol)
                        & ~table.quantity.str.contains(" - ")].paper_is == "inside").sum()
        assert f"the paper's accuracies inside our intervals: {inside} of 4" in claim
    assert "Claims 2 and 3 compare noise learned from one source" in section
    mnist = write_report("s", "MNIST", [], rows, None, str(tmp_path), 1.0)
    assert "a different data set: no number is held against them" in mnist
