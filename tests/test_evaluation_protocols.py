"""structnoise.evaluation.protocols: how each protocol sets up an attack and scores it."""

import numpy as np
import pytest
import torch

from structnoise.evaluation.protocols import (
    PROTOCOLS,
    EOTProtocol,
    PaperProtocol,
    Protocol,
    get_protocols,
)
from structnoise.sources import LinfPGD
from structnoise.sources.eot import DEFAULT_EOT_SAMPLES


class _Net:
    """The two things a protocol reads from a net: its module and its predictions."""

    def __init__(self):
        self.module_ = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))

    def predict(self, X):
        return np.zeros(len(X), dtype=int)


def test_paper_protocol_attacks_one_draw_of_the_bare_module():
    net, source = _Net(), LinfPGD(eps=0.1, eot_samples=5)
    setup = PaperProtocol().attack(source, net, stochastic=True)
    assert setup.target is net.module_
    assert setup.source.eot_samples == 1 and (setup.eot_samples, setup.eot_draws) == (1, 1)
    assert source.eot_samples == 5  # the caller's source is left as it was


def test_eot_protocol_averages_draws_only_for_a_stochastic_net():
    net, source = _Net(), LinfPGD(eps=0.1)
    stochastic = EOTProtocol(eot_samples=4).attack(source, net, stochastic=True)
    assert stochastic.source.eot_samples == 4 and stochastic.eot_draws == 4
    fixed = EOTProtocol(eot_samples=4).attack(source, net, stochastic=False)
    assert fixed.source.eot_samples == 1
    # a deterministic net: both protocols are one measurement
    assert fixed.signature() == PaperProtocol().attack(source, net, False).signature()
    assert stochastic.signature() != PaperProtocol().attack(source, net, True).signature()


def test_accuracy_is_that_of_the_nets_prediction():
    y = np.array([0, 0, 1, 2])
    assert PaperProtocol().accuracy(_Net(), torch.zeros(4, 1, 2, 2), y) == 0.5


def test_names_and_instances_resolve_in_order():
    protocols = get_protocols(("eot", "paper"), eot_samples=3)
    assert [type(p) for p in protocols] == [EOTProtocol, PaperProtocol]
    assert protocols[0].eot_samples == 3
    assert get_protocols("eot")[0].eot_samples == DEFAULT_EOT_SAMPLES
    own = EOTProtocol(eot_samples=16)
    assert get_protocols([own])[0] is own
    assert set(PROTOCOLS) == {"paper", "eot"}


def test_a_third_protocol_is_a_subclass():
    class TwoDraws(Protocol):
        name = "eot2"

        def attack(self, source, net, stochastic):
            return EOTProtocol(2).attack(source, net, stochastic)

    assert [p.name for p in get_protocols(["paper", TwoDraws()])] == ["paper", "eot2"]


@pytest.mark.parametrize("protocols,match", [
    (("paper", "honest"), "protocols must be drawn from"),
    ((), "non-empty"),
    (("eot", EOTProtocol(4)), "distinct names"),
])
def test_bad_protocols_are_refused(protocols, match):
    with pytest.raises(ValueError, match=match):
        get_protocols(protocols)
