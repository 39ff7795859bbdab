"""Sphinx configuration for structnoise (built by ``tox -e docs`` with -W)."""

import os
import sys
import warnings

import matplotlib

matplotlib.use("Agg")
sys.path.insert(0, os.path.abspath(".."))

import structnoise  # noqa: E402

project = "structnoise"
author = "the structnoise developers"
copyright = "2026, the structnoise developers"
version = release = structnoise.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
# numpydoc lists the members itself through autosummary; avoid duplicate stubs
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
templates_path = ["_templates"]
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.md5", "**.codeobj.json"]
html_theme = "alabaster"
html_static_path = []

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": "/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
}

# advertorch and skorch warn about deprecated torch APIs while the examples run
warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", category=FutureWarning)

# "Examples using X" mini-galleries on the API pages
sphinx_gallery_conf["doc_module"] = ("structnoise",)
sphinx_gallery_conf["backreferences_dir"] = "generated/backreferences"
