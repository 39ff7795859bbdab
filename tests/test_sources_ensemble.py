"""structnoise.sources.ensemble: AttackEnsemble is the worst case per image; autoattack_rand."""

import numpy as np
import pytest
import torch
from sklearn.base import clone

from structnoise import NoisyNeuralNetClassifier, StructuredNoiseFitter
from structnoise._random import scoped_seed
from structnoise.datasets import load_digits_images
from structnoise.evaluation.protocols import EOTProtocol, PaperProtocol
from structnoise.models import DigitsMLP
from structnoise.sources import (
    FGSM,
    L2PGD,
    AttackEnsemble,
    AutoPGD,
    CarliniWagnerL2,
    Corruption,
    LinfPGD,
    MomentumIterative,
    SquareAttack,
    autoattack_rand,
)
from structnoise.sources.ensemble import threat_model

EPS = 0.1


@pytest.fixture(scope="module")
def model_and_data():
    with scoped_seed(0):
        model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.Tanh(),
                                    torch.nn.Flatten(), torch.nn.Linear(256, 10)).eval()
    X, y = load_digits_images()
    X, y = torch.from_numpy(X[:120]), torch.from_numpy(y[:120])
    # train it a little, so that attacks have correct images to fool
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(X), y).backward()
        opt.step()
    return model.eval(), X, y


class _TopFGSM(FGSM):
    """FGSM on the top half of the image only."""

    def _generate_batch(self, state, X, y, *, index, rows):
        adv = super()._generate_batch(state, X, y, index=index, rows=rows)
        out = X.clone()
        out[..., :4, :] = adv[..., :4, :]
        return out


class _BottomFGSM(FGSM):
    """FGSM on the bottom half of the image only."""

    def _generate_batch(self, state, X, y, *, index, rows):
        adv = super()._generate_batch(state, X, y, index=index, rows=rows)
        out = X.clone()
        out[..., 4:, :] = adv[..., 4:, :]
        return out


def _members():
    # deterministic attacks (no random start), so an image's outcome does not
    # depend on which other images share its batch; gradient attacks on a
    # small network fool nested sets of images, so two of them perturb
    # different halves of the image and fool different images
    return [_TopFGSM(eps=0.2), _BottomFGSM(eps=0.2),
            LinfPGD(eps=0.2, nb_iter=2, eps_iter=0.03, rand_init=False)]


def _correct(model, X, y):
    with torch.no_grad():
        return (model(X).argmax(1) == y).numpy()


def test_on_a_deterministic_network_accuracy_is_the_and_of_the_members(model_and_data):
    model, X, y = model_and_data
    members = _members()
    each = [_correct(model, m.generate(model, X, y), y) for m in members]
    both = np.logical_and.reduce(each)
    out = AttackEnsemble(members).generate(model, X, y)
    np.testing.assert_array_equal(_correct(model, out, y), both)
    # the members fool different images: the worst case is below every one of them
    assert both.mean() < min(e.mean() for e in each)


def test_output_stays_in_the_budget_and_range_and_the_input_is_untouched(model_and_data):
    model, X, y = model_and_data
    X0 = X.clone()
    out = AttackEnsemble(_members()).generate(model, X, y)
    assert torch.equal(X, X0)
    assert float((out - X).abs().max()) <= 0.2 + 1e-6
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_each_member_sees_only_the_images_still_standing(model_and_data):
    model, X, y = model_and_data
    seen = []

    class Spy(LinfPGD):
        def _generate_batch(self, state, Xb, yb, *, index, rows):
            seen.append(Xb.shape[0])
            return super()._generate_batch(state, Xb, yb, index=index, rows=rows)

    y = y.clone()
    y[:5] = (y[:5] + 1) % 10  # five images the network gets wrong to begin with
    first = FGSM(eps=EPS)
    spy = Spy(eps=EPS, nb_iter=3, eps_iter=0.03, rand_init=False, batch_size=1000)
    out = AttackEnsemble([first, spy]).generate(model, X, y)
    standing = _correct(model, first.generate(model, X, y), y) & _correct(model, X, y)
    assert seen == [int(standing.sum())]
    # they are returned as they are, and no attack sees them
    wrong = torch.from_numpy(~_correct(model, X, y))
    assert int(wrong.sum()) == 5 and torch.equal(out[wrong], X[wrong])


def test_the_first_fooling_example_is_kept(model_and_data):
    model, X, y = model_and_data
    first = FGSM(eps=EPS)
    adv = first.generate(model, X, y)
    fooled = torch.from_numpy(~_correct(model, adv, y) & _correct(model, X, y))
    out = AttackEnsemble([first, LinfPGD(eps=EPS, nb_iter=3, rand_init=False)]).generate(
        model, X, y)
    assert fooled.any() and torch.equal(out[fooled], adv[fooled])


def test_eot_samples_and_seeds_reach_the_members():
    ens = AttackEnsemble([FGSM(eps=EPS), SquareAttack(eps=EPS, eot_samples=5)], eot_samples=3,
                         random_state=7)
    members = ens._configured()
    assert [m.eot_samples for m in members] == [3, 3]
    assert members[0].random_state != members[1].random_state
    kept = AttackEnsemble(ens.attacks)._configured()
    assert [m.eot_samples for m in kept] == [1, 5] and kept[1].random_state is None
    # the members given are never modified
    assert ens.attacks[1].eot_samples == 5 and ens.attacks[0].random_state is None


def test_a_seeded_ensemble_is_reproducible(model_and_data):
    model, X, y = model_and_data
    def make(seed):
        return AttackEnsemble([FGSM(eps=EPS), SquareAttack(eps=EPS, max_iter=10)],
                              random_state=seed)
    a = make(1).generate(model, X, y)
    assert torch.equal(a, make(1).generate(model, X, y))


def test_protocols_configure_the_ensembles_draws():
    class Net:
        module_ = torch.nn.Linear(4, 2)

    ens = autoattack_rand(EPS)
    assert PaperProtocol().attack(ens, Net(), stochastic=True).source.eot_samples == 1
    setup = EOTProtocol(eot_samples=6).attack(ens, Net(), stochastic=True)
    assert setup.source.eot_samples == 6
    assert [m.eot_samples for m in setup.source._configured()] == [6, 6]
    assert ens.eot_samples == 20  # the protocols work on copies


def test_clone_and_params_round_trip():
    ens = autoattack_rand(EPS, eot_samples=4, max_iter=7)
    copy = clone(ens)
    assert copy.get_params(deep=False).keys() == ens.get_params(deep=False).keys()
    assert [m.get_params() for m in copy.attacks] == [m.get_params() for m in ens.attacks]
    assert copy.attacks[0] is not ens.attacks[0]


def test_autoattack_rand_is_apgd_ce_then_apgd_dlr_with_20_draws():
    ens = autoattack_rand(0.05)
    assert [type(m) for m in ens.attacks] == [AutoPGD, AutoPGD]
    assert [m.loss_type for m in ens.attacks] == ["cross_entropy", "difference_logits_ratio"]
    assert [m.eot_samples for m in ens.attacks] == [20, 20] and ens.eot_samples == 20
    assert [m.nb_random_init for m in ens.attacks] == [1, 1]
    assert all(m.eps == 0.05 and m.eps_step == 0.1 and m.max_iter == 100 for m in ens.attacks)
    assert ens.describe() == {"family": "AttackEnsemble", "kind": "adversarial",
                              "strength": 0.05, "strength_unit": "eps"}


def test_autoattack_rand_against_a_noisy_network_is_no_weaker_than_its_first_attack():
    X, y = load_digits_images()
    with scoped_seed(0):
        net = NoisyNeuralNetClassifier(
            DigitsMLP, noise=StructuredNoiseFitter(structure="isotropic", random_state=0),
            noise_source=FGSM(eps=0.1), noise_layers="body.2", max_epochs=4, lr=0.1,
            train_split=None, verbose=0, noise_ensemble=2).fit(X[:400], y[:400])
    Xt, yt = torch.from_numpy(X[400:460]), y[400:460]
    ens = autoattack_rand(0.1, eot_samples=2, max_iter=5, random_state=0)
    out = ens.generate(net, Xt, yt)
    assert float((out - Xt).abs().max()) <= 0.1 + 1e-6
    clean = np.mean(net.predict(Xt.numpy()) == yt)
    assert np.mean(net.predict(out.numpy()) == yt) < clean


@pytest.mark.parametrize("attacks,match", [
    ([], "non-empty list"),
    ((), "non-empty list"),
    ([FGSM(eps=EPS), Corruption("rotate", strength=1.0)], r"member 1.*naturalistic"),
    ([FGSM(eps=EPS), FGSM(eps=0.2)], r"member 1, FGSM\(eps=0.2\).*eps 0.2"),
    ([FGSM(eps=EPS), L2PGD(eps=EPS)], r"member 1, L2PGD.*L2 norm"),
    ([FGSM(eps=EPS), CarliniWagnerL2()], r"member 1, CarliniWagnerL2.*no budget"),
    ([FGSM(eps=EPS), FGSM(eps=EPS, clip_min=-1.0)], r"pixel range: member 1"),
    ([FGSM(eps=EPS), FGSM(eps=-0.1)], r"eps"),
])
def test_bad_members_are_refused_before_any_attack_runs(attacks, match):
    calls = []

    class Model(torch.nn.Module):
        def forward(self, x):
            calls.append(1)
            return torch.zeros(x.shape[0], 10)

    with pytest.raises(ValueError, match=match):
        AttackEnsemble(attacks).generate(Model(), torch.rand(4, 1, 8, 8))
    assert not calls


def test_a_member_that_is_no_source_is_a_type_error():
    with pytest.raises(TypeError, match="member 1 is str"):
        AttackEnsemble([FGSM(eps=EPS), "pgd"]).generate(torch.nn.Flatten(),
                                                         torch.rand(2, 1, 8, 8))


def test_threat_models_of_the_budgeted_attacks():
    assert threat_model(FGSM(eps=0.1)) == (0.1, np.inf)
    assert threat_model(L2PGD(eps=0.5)) == (0.5, 2.0)
    assert threat_model(MomentumIterative(eps=0.3, ord=2)) == (0.3, 2.0)
    assert threat_model(AutoPGD(eps=0.2, norm="inf")) == (0.2, np.inf)
    assert threat_model(autoattack_rand(0.03)) == (0.03, np.inf)
    with pytest.raises(ValueError, match="not an attack"):
        threat_model(Corruption("rotate", 1))
