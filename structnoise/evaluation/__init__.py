"""The experiment protocol as a library: run the paper's table both ways.

:class:`Experiment` runs the authors' protocol (base network, noise from
activation deltas, freeze and re-initialise, ensemble prediction) on any
network and data, and evaluates every network under each protocol
(:mod:`~structnoise.evaluation.protocols`: the paper's and honest EOT).
Inside: :mod:`~structnoise.evaluation.plan` (which networks and
evaluations), :mod:`~structnoise.evaluation.trainer`,
:mod:`~structnoise.evaluation.evaluator`, :mod:`~structnoise.evaluation.store`
(crash-safe, resumable), :mod:`~structnoise.evaluation.checks` (the
obfuscation checks), :mod:`~structnoise.evaluation.worst_case` (the worst
case over attacks, image by image, from the stored per-image outcomes),
:mod:`~structnoise.evaluation.views` (summaries, the transfer table and
matrix), :mod:`~structnoise.evaluation.report` and
:mod:`~structnoise.evaluation.presets` (the ready-made runs behind
``python -m structnoise.evaluation``).

The names are imported on first use, so ``python -m structnoise.evaluation
--help`` answers before torch loads.
"""

import importlib

#: public name -> the submodule that defines it
_EXPORTS = {
    "Experiment": "experiment",
    "COLUMNS": "schema", "CHECK_COLUMNS": "schema", "NOISE_FREE": "schema",
    "ANY_SOURCE": "schema", "STANDARD": "schema", "CLEAN": "schema", "WORST_CASE": "schema",
    "describe_source": "schema", "default_label": "schema",
    "NetPlan": "plan", "PAIRINGS": "plan",
    "Protocol": "protocols", "PaperProtocol": "protocols", "EOTProtocol": "protocols",
    "PROTOCOLS": "protocols",
    "summarise": "views", "time_table": "views", "transfer_table": "views",
    "transfer_matrix": "views",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
