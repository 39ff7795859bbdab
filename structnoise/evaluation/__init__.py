"""The experiment protocol as a library: run the paper's table both ways.

:class:`Experiment` runs the authors' protocol (base network, noise from
activation deltas, freeze and re-initialise, ensemble prediction) on any
network and data, and evaluates every network under the paper's protocol
and honestly (EOT); :mod:`structnoise.evaluation.checks` holds the
obfuscation checks; :func:`transfer_table` and :func:`summarise` are views
of the results; :mod:`structnoise.evaluation.presets` the ready-made runs
behind ``python -m structnoise.evaluation``.
"""

from .experiment import ANY_SOURCE, COLUMNS, NOISE_FREE, Experiment, describe_source
from .views import summarise, transfer_table

__all__ = ["Experiment", "COLUMNS", "NOISE_FREE", "ANY_SOURCE", "describe_source",
           "summarise", "transfer_table"]
