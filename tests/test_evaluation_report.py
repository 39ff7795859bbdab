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
