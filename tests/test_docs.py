"""Every public name has a numpydoc docstring with Parameters and Examples."""

import importlib
import inspect

import pytest
from numpydoc.docscrape import ClassDoc, FunctionDoc

import structnoise

MODULES = ["structnoise", "structnoise.covariance", "structnoise.sources",
           "structnoise.scoring", "structnoise.datasets", "structnoise.models",
           "structnoise.plotting", "structnoise.evaluation", "structnoise.evaluation.checks",
           "structnoise.evaluation.presets", "structnoise.evaluation.report",
           "structnoise.evaluation.store", "structnoise.evaluation.plan",
           "structnoise.evaluation.protocols", "structnoise.evaluation.schema",
           "structnoise.evaluation.trainer", "structnoise.evaluation.evaluator",
           "structnoise.evaluation.settings", "structnoise.evaluation.views",
           "structnoise.evaluation.stacked", "structnoise.evaluation.paired",
           "structnoise.evaluation.adequacy", "structnoise.evaluation.worst_case",
           "structnoise.evaluation.progress", "structnoise.evaluation.pricing",
           "structnoise.sources.ensemble", "structnoise.splitting"]


def public_names():
    seen = {}
    for mod_name in MODULES:
        mod = importlib.import_module(mod_name)
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                seen.setdefault(f"{obj.__module__}.{obj.__qualname__}", obj)
    return sorted(seen.items())


@pytest.mark.parametrize("qualname,obj", public_names(), ids=lambda v: v if isinstance(v, str)
                         else "")
def test_numpydoc_sections(qualname, obj):
    assert obj.__doc__, f"{qualname} has no docstring"
    doc = ClassDoc(obj) if inspect.isclass(obj) else FunctionDoc(obj)
    assert doc["Summary"], f"{qualname}: no summary line"
    is_exception = inspect.isclass(obj) and issubclass(obj, BaseException)
    init = obj.__init__ if inspect.isclass(obj) else obj
    params = [] if is_exception else [p for p in inspect.signature(init).parameters
                                      if p not in ("self", "args", "kwargs")]
    if params:
        documented = {n for p in doc["Parameters"] for n in p.name.replace(" ", "").split(",")}
        missing = [p for p in params if p not in documented]
        assert not missing, f"{qualname}: parameters not documented: {missing}"
    assert doc["Examples"], f"{qualname}: no Examples section"


def test_public_api_is_small():
    assert set(structnoise.__all__) == {"StructuredNoiseFitter", "NoiseModule", "ActivationPairs",
                                        "NoisyNeuralNetClassifier", "sources", "__version__"}
