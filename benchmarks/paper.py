"""The main job: the paper's protocol both ways (``tox -e bench``, ``tox -e bench-paper``).

A thin command line over :mod:`structnoise.evaluation`: the presets, the
experiment, the store, the checks and the report all live in the package
(``python -m structnoise.evaluation --help`` is the same command).
"""

import sys

from structnoise.evaluation.__main__ import main

if __name__ == "__main__":
    sys.exit(0 if main(sys.argv[1:]) is not None else 1)
