"""The package's import graph: no circle, no private name across modules, light entry points.

Read from the source with ``ast`` (function-level imports included: a lazy
import still ties two modules together), so the rules hold for every code
path, not only for what one import happens to load.
"""

import ast
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import structnoise

ROOT = Path(structnoise.__file__).parent
#: the one module that may name a private module of another project
#: (scikit-learn's parameter-validation vocabulary; see its docstring), and
#: the advertorch compat module, which patches advertorch's internals by design
THIRD_PARTY_PRIVATE_OK = {"structnoise._param_validation", "structnoise.sources._advertorch"}


def _module_name(path):
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules():
    return {_module_name(p): p for p in ROOT.rglob("*.py")}


def _imports(name, path):
    """(imported module, imported names) pairs of one module, relative imports resolved."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            out.append((target, tuple(alias.name for alias in node.names)))
    return out


def _resolve(target, names, modules):
    """The structnoise modules an import statement loads."""
    hits = []
    if target in modules:
        hits.append(target)
    for n in names:  # ``from . import sources`` imports a module
        if f"{target}.{n}" in modules:
            hits.append(f"{target}.{n}")
    return hits


def _graph():
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        deps = set()
        for target, names in _imports(name, path):
            deps.update(d for d in _resolve(target, names, modules) if d != name)
        graph[name] = deps
    return graph


def _is_private(part):
    return part.startswith("_") and not part.startswith("__")


def test_the_import_graph_has_no_circle():
    graph = _graph()
    state, stack, circles = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == "open":
                circles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not circles, "import circles: " + "; ".join(" -> ".join(c) for c in circles)


def test_no_module_imports_a_private_name_of_another_module():
    modules = _modules()
    bad = []
    for name, path in modules.items():
        for target, names in _imports(name, path):
            if target is None:
                continue
            private_names = [n for n in names if _is_private(n)]
            if target.startswith("structnoise"):
                if private_names:
                    bad.append(f"{name}: from {target} import {', '.join(private_names)}")
                # a private module belongs to its package: only modules inside
                # that package (or its subpackages) may import it
                parts = target.split(".")
                for i, part in enumerate(parts):
                    if _is_private(part):
                        owner = ".".join(parts[:i])
                        if not (name == owner or name.startswith(owner + ".")):
                            bad.append(f"{name}: imports {target}, private to {owner}")
                        break
            elif name not in THIRD_PARTY_PRIVATE_OK:
                parts = target.split(".")
                if private_names or any(_is_private(p) for p in parts):
                    bad.append(f"{name}: from {target} import {', '.join(names)}")
    assert not bad, "\n".join(bad)


def test_the_rules_see_a_circle_and_a_private_name(tmp_path, monkeypatch):
    """The checks above are not vacuous: they find what they look for."""
    pkg = tmp_path / "structnoise"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import thing\n")
    (pkg / "b.py").write_text("def f():\n    from .a import _hidden\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "_private.py").write_text("")
    (pkg / "c.py").write_text("from .sub._private import x\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", pkg)
    with pytest.raises(AssertionError, match="structnoise.a -> structnoise.b"):
        test_the_import_graph_has_no_circle()
    with pytest.raises(AssertionError, match="_hidden") as info:
        test_no_module_imports_a_private_name_of_another_module()
    assert "private to structnoise.sub" in str(info.value)


def test_the_command_line_help_imports_no_heavy_library():
    """``python -m structnoise.evaluation --help`` parses before torch, ART or advertorch load."""
    code = ("import runpy, sys\n"
            "sys.argv = ['structnoise.evaluation', '--help']\n"
            "try:\n"
            "    runpy.run_module('structnoise.evaluation', run_name='__main__')\n"
            "except SystemExit:\n"
            "    pass\n"
            "heavy = sorted(m for m in ('torch', 'art', 'advertorch', 'sklearn', 'pandas', "
            "'skorch') if m in sys.modules)\n"
            "print('HEAVY', heavy)\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT.parent))
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True, timeout=60).stdout
    seconds = time.perf_counter() - t0
    assert "usage: python -m structnoise.evaluation" in out
    assert "HEAVY []" in out, out
    # the goal is well under 2 s; this bound only guards against a heavy
    # import creeping back on a loaded machine (timings belong in benchmarks)
    assert seconds < 30
