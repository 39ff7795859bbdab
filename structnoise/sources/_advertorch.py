"""Make advertorch 0.2.3 importable with modern torch (the one compat layer).

advertorch 0.2.3 (2020) fails on import with torch 2.x for two reasons:

* ``advertorch.attacks.fast_adaptive_boundary`` imports ``zero_gradients``
  from ``torch.autograd.gradcheck``, which torch removed. When it is missing
  we add it there (the 4-line function torch had) for the duration of
  advertorch's import only: advertorch binds the name in its own module,
  and torch is left as it was (importing structnoise changes no torch
  module).
* ``advertorch.functional`` (imported by ``advertorch.defenses``) imports
  torchvision at module level, only for the JPEG filter defense. The PyPI
  torchvision wheel does not load beside the CPU torch. When torchvision
  imports fine we change nothing; when it does not, advertorch is imported
  with a placeholder that raises a clear ImportError only when the JPEG
  transform is used, and the placeholder is removed from ``sys.modules``
  right after, so no fake ``torchvision`` is left for other code to find.

:func:`quiet` silences advertorch's own warnings (deprecations of old torch
APIs, loss-reduction advice) inside our calls only.
"""

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings

import torch

__all__ = ["import_advertorch", "quiet"]


def _zero_gradients(x):
    """Zero the gradient of a tensor or of every tensor in an iterable
    (torch's removed ``torch.autograd.gradcheck.zero_gradients``)."""
    if isinstance(x, torch.Tensor):
        if x.grad is not None:
            x.grad.detach_()
            x.grad.zero_()
    elif isinstance(x, (list, tuple)) or hasattr(x, "__iter__"):
        for elem in x:
            _zero_gradients(elem)


class _MissingTorchvisionTransform:
    """Stands in for a torchvision transform when torchvision cannot load."""

    def __init__(self, name, reason):
        self._name = name
        self._reason = reason

    def __call__(self, *args, **kwargs):
        raise ImportError(
            f"torchvision.transforms.{self._name} is needed here (advertorch's JPEG "
            f"filter defense) but torchvision could not be imported: {self._reason}. "
            "Install a torchvision build that matches your torch.")


class _PlaceholderFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves a placeholder ``torchvision`` while advertorch is imported."""

    def __init__(self, reason):
        self.reason = reason

    def find_spec(self, fullname, path=None, target=None):
        if fullname in ("torchvision", "torchvision.transforms"):
            return importlib.machinery.ModuleSpec(fullname, self)
        return None

    def create_module(self, spec):
        module = types.ModuleType(spec.name)
        if spec.name == "torchvision":
            transforms = types.SimpleNamespace(
                ToPILImage=lambda: _MissingTorchvisionTransform("ToPILImage", self.reason),
                ToTensor=lambda: _MissingTorchvisionTransform("ToTensor", self.reason))
            module.transforms = transforms
            module.__path__ = []
        return module

    def exec_module(self, module):
        pass


def _torchvision_error():
    """None if torchvision imports, else why not (partial imports removed)."""
    before = set(sys.modules)
    try:
        importlib.import_module("torchvision")
        return None
    except Exception as exc:  # ImportError, or RuntimeError from a wrong build
        for name in set(sys.modules) - before:
            if name == "torchvision" or name.startswith("torchvision."):
                del sys.modules[name]
        return f"{type(exc).__name__}: {exc}"


def import_advertorch():
    """Import advertorch on modern torch and return ``advertorch.attacks``.

    Returns
    -------
    attacks : module
        ``advertorch.attacks``.

    Examples
    --------
    >>> from structnoise.sources._advertorch import import_advertorch
    >>> import_advertorch().LinfPGDAttack.__name__
    'LinfPGDAttack'
    """
    if "advertorch.attacks" in sys.modules:
        return sys.modules["advertorch.attacks"]
    gradcheck = importlib.import_module("torch.autograd.gradcheck")
    patched = not hasattr(gradcheck, "zero_gradients")
    if patched:
        gradcheck.zero_gradients = _zero_gradients
    try:
        return _import_attacks()
    finally:
        if patched:
            del gradcheck.zero_gradients


def _import_attacks():
    """``import advertorch.attacks``, with a placeholder torchvision when it cannot load."""
    reason = _torchvision_error()
    if reason is None:
        with quiet():
            return importlib.import_module("advertorch.attacks")
    finder = _PlaceholderFinder(reason)
    sys.meta_path.insert(0, finder)
    try:
        with quiet():
            return importlib.import_module("advertorch.attacks")
    finally:
        sys.meta_path.remove(finder)
        for name in ("torchvision.transforms", "torchvision"):
            module = sys.modules.get(name)
            if module is not None and getattr(module, "__spec__", None) is not None \
                    and module.__spec__.loader is finder:
                del sys.modules[name]


@contextlib.contextmanager
def quiet():
    """Silence advertorch's warnings for the duration of the block only."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"advertorch(\..*)?")
        warnings.filterwarnings("ignore", category=DeprecationWarning,
                                message=r".*(size_average|reduce|reduction).*")
        warnings.filterwarnings("ignore", category=UserWarning,
                                message=r".*loss_fn.*reduction.*")
        yield
