"""structnoise.evaluation.plan: which networks an experiment means, and what each is scored on."""

import dataclasses

import pytest

from structnoise.evaluation import NetPlan
from structnoise.evaluation.plan import PAIRINGS, get_pairing, make_plan


def _d(family, kind, strength, label=None):
    return {"family": family, "kind": kind, "strength": strength,
            "label": label or f"{family}({strength:g})"}


FGSM1, FGSM2 = _d("FGSM", "adversarial", 0.1), _d("FGSM", "adversarial", 0.2)
ROT = _d("rotate", "naturalistic", 2.0)


def _plan(**kw):
    params = dict(seeds=(0,), structures=("none", "full", "isotropic"),
                  trace_scales=lambda kind: {"adversarial": (2.0,),
                                             "naturalistic": (0.5,)}[kind],
                  noise=[FGSM1, ROT], evals=[FGSM1, FGSM2, ROT], pairing="kind")
    params.update(kw)
    return make_plan(**params)


def test_net_plan_is_frozen_and_its_key_names_the_network():
    plan = _plan()[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.seed = 3
    assert plan.key == (0, "FGSM", "FGSM(0.1)", "0.1", "full", "2.0", "standard", "nan", "0.0")
    assert len({p.key for p in _plan()}) == len(_plan())


def test_shared_networks_are_planned_once_per_seed_and_trace_scale():
    plans = _plan(seeds=(0, 1))
    for seed in (0, 1):
        mine = [p for p in plans if p.seed == seed]
        assert [(p.noise_family, p.structure, p.trace_scale) for p in mine] == [
            ("FGSM", "full", 2.0), ("rotate", "full", 0.5), ("none", "none", None),
            ("any", "isotropic", 2.0), ("any", "isotropic", 0.5)]
    assert {p.group for p in plans} == {(0, 0), (0, 1), (0, None), (1, 0), (1, 1), (1, None)}


def test_kind_pairing_and_what_the_shared_networks_get():
    by = {(p.noise_family, p.trace_scale): p.evals for p in _plan()}
    assert by[("FGSM", 2.0)] == (0, 1)        # attacks only
    assert by[("rotate", 0.5)] == (2,)        # modifications only
    assert by[("none", None)] == (0, 1, 2)    # the noise-free network: everything
    assert by[("any", 2.0)] == (0, 1)         # stands in for the attack-shaped noise
    assert by[("any", 0.5)] == (2,)


def test_matched_pairing_evaluates_attack_noise_at_its_own_eps():
    plans = _plan(noise=[FGSM1, FGSM2], pairing="matched", structures=("none", "full"))
    by = {(p.noise_strength, p.structure): p.evals for p in plans}
    assert by[(0.1, "full")] == (0,) and by[(0.2, "full")] == (1,)
    assert next(p for p in plans if p.structure == "none").evals == (0, 1, 2)


def test_a_callable_pairing_is_a_rule_like_the_registered_ones():
    def same_family(noise, evaluation):
        return noise["family"] == evaluation["family"]

    plans = _plan(pairing=same_family, structures=("full",))
    assert {p.noise_family: p.evals for p in plans} == {"FGSM": (0, 1), "rotate": (2,)}
    assert get_pairing("all") is PAIRINGS["all"]
    with pytest.raises(ValueError, match="pairing must be one of"):
        get_pairing("nearest")


def test_checks_on_the_first_seeds_kinds_shaped_by_the_first_attack():
    plans = _plan(seeds=(0, 1), checks=True, structures=("none", "full", "diagonal",
                                                         "isotropic"))
    checked = {(p.seed, p.noise_family, p.structure) for p in plans if p.check}
    assert checked == {(0, "FGSM", "full"), (0, "FGSM", "diagonal"), (0, "none", "none"),
                       (0, "any", "isotropic")}


def test_augmentations_alone_and_with_the_full_noise():
    aug = _d("GaussianNoise", "naturalistic", 0.2)
    plans = _plan(augmentations=[(aug, 1.0)], augment_noise=0)
    augmented = [p for p in plans if p.augment is not None]
    assert [(p.structure, p.noise_family, p.train_family, p.train_ratio) for p in augmented] \
        == [("none", "none", "GaussianNoise", 1.0), ("full", "FGSM", "GaussianNoise", 1.0)]
    assert all(p.evals == (0, 1, 2) for p in augmented)


def test_two_sources_of_one_identity_cannot_share_a_network():
    with pytest.raises(ValueError, match="same network twice"):
        _plan(noise=[FGSM1, dict(FGSM1)])
    # labelled apart, they are two networks
    plans = _plan(noise=[FGSM1, dict(FGSM1, label="fgsm-other")], structures=("full",))
    assert len(plans) == 2


def test_rows_per_network():
    plan = NetPlan(0, "full", 2.0, 0, "FGSM", "f", "adversarial", 0.1, evals=(0, 1))
    assert plan.n_rows(2) == 6
