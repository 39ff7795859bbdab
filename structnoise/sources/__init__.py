"""Modification sources: adversarial attacks and naturalistic corruptions.

Every source is a scikit-learn estimator with
``generate(model, X, y=None) -> torch.Tensor``.
"""

from .._validation import validate_images, validate_labels
from ._advertorch import import_advertorch as _import_advertorch
from .art_attacks import AutoPGD, SquareAttack
from .attacks import (
    DDN,
    FAB,
    FGSM,
    L1PGD,
    L2PGD,
    CarliniWagnerL2,
    LinfPGD,
    LinfSPSA,
    MomentumIterative,
    SpatialTransform,
)
from .base import ModificationSource
from .corruptions import (
    CORRUPTIONS,
    SEVERITY_PARAMETERS,
    STRENGTH_TRANSFORMS,
    Corruption,
    GaussianNoise,
)
from .ensemble import AttackEnsemble, autoattack_rand
from .eot import EOTLoss, EOTModel

# make ``import advertorch.attacks`` work on modern torch once structnoise is imported
_import_advertorch()

__all__ = [
    "ModificationSource", "EOTModel", "EOTLoss", "validate_images", "validate_labels",
    "FGSM", "LinfPGD", "L2PGD", "L1PGD", "MomentumIterative", "CarliniWagnerL2", "DDN",
    "FAB", "LinfSPSA", "SpatialTransform", "AutoPGD", "SquareAttack", "AttackEnsemble",
    "autoattack_rand",
    "Corruption", "GaussianNoise", "CORRUPTIONS", "SEVERITY_PARAMETERS", "STRENGTH_TRANSFORMS",
]
