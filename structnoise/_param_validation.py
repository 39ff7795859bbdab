"""scikit-learn's parameter-validation vocabulary, imported in this one place.

scikit-learn declares ``_parameter_constraints`` with ``Interval``,
``StrOptions`` and ``RealNotInt`` and wraps ``fit`` in ``_fit_context``, all
from private modules (third-party estimators such as imbalanced-learn use
the same names). They are imported here only, so a move in scikit-learn is
one edit, and no other module of structnoise names a private module of
another package (``tests/test_imports.py`` checks it).
"""

from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, RealNotInt, StrOptions

__all__ = ["Interval", "RealNotInt", "StrOptions", "fit_context"]

#: ``sklearn.base._fit_context``: validates the parameters once per ``fit``
fit_context = _fit_context
