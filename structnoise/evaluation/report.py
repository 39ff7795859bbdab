"""The report of a run: the paper's tables both ways, verdicts, checks, figures."""

import os

import numpy as np
import pandas as pd

from .adequacy import TOLERANCE, adequacy_table, undertrained_conditions
from .paired import (
    COMBINE_RULE,
    UNDERTRAINED,
    combine,
    paired_differences,
    t_interval,
    verdict,
    weakest,
)
from .presets import PAPER_MODIFICATIONS, PAPER_NUMBERS
from .schema import ANY_SOURCE, NOISE_FREE, STANDARD, WORST_CASE
from .store import write_atomic
from .views import summarise, time_table

__all__ = ["CLAIMS", "claim_tables", "baseline_table", "paper_comparison", "write_report",
           "write_figures"]

CLAIMS = {
    1: "Structured noise improves robustness to attacks and to naturalistic modifications, "
       "more than no noise and more than isotropic noise of the same total variance.",
    2: "For naturalistic modifications the structure helps most, but transfers poorly from "
       "one modification type to another.",
    3: "Structure learned from adversarial attacks generalises to other attacks.",
    4: "Everything uses only local information: each layer's noise comes from that layer's "
       "own activations.",
}
_COLUMNS = [("Full", "full"), ("Diagonal", "diagonal"), ("Identity", "isotropic"),
            ("None", "none")]


def _cell(summary, protocol, eval_family, eval_strength, structure, noise_family=None,
          noise_strength=None, trace_scale=None):
    """(mean, ci) of one condition on one evaluation, or None."""
    s = summary[(summary.eval_protocol == protocol) & (summary.eval_family == eval_family)
                & np.isclose(summary.eval_strength.astype(float), eval_strength)
                & (summary.structure == structure)]
    if structure == "isotropic":
        s = s[s.noise_family == ANY_SOURCE]
    elif structure != "none":
        s = s[(s.noise_family == noise_family)
              & np.isclose(s.noise_strength.astype(float), noise_strength)]
    if trace_scale is not None and structure != "none":
        s = s[np.isclose(s.trace_scale.astype(float), trace_scale)]
    if not len(s):
        return None
    r = s.iloc[0]
    return float(r["mean"]), float(r["ci"])


def _fmt(cell):
    if cell is None:
        return "n/a"
    mean, ci = cell
    return f"{mean:.2f}" if ci != ci else f"{mean:.2f} ± {ci:.2f}"


def _matched(results):
    """(family, strength, kind, trace_scale) of evaluations that match a noise source."""
    noisy = results[~results.noise_family.isin([NOISE_FREE, ANY_SOURCE])]
    pairs = noisy[(noisy.noise_family == noisy.eval_family)
                  & np.isclose(noisy.noise_strength.astype(float),
                               noisy.eval_strength.astype(float))]
    keys = pairs[["eval_family", "eval_strength", "eval_kind", "trace_scale"]].drop_duplicates()
    return [tuple(k) for k in keys.itertuples(index=False)]


def claim_tables(results, references=None):
    """Per protocol: the claims' tables and verdicts, built from paired per-seed comparisons.

    Every condition of a seed shares its base network and test images, so
    conditions are compared through per-seed paired differences with a
    t-interval over seeds (:mod:`~structnoise.evaluation.paired`); each
    comparison is supported, contradicted or inconclusive; each part of a
    claim combines its comparisons by the printed rule, and the claim's
    verdict is its weakest part's. Comparisons
    involving a condition that misses its clean-accuracy reference are
    "inconclusive: undertrained" (:mod:`~structnoise.evaluation.adequacy`).

    Parameters
    ----------
    results : pandas.DataFrame
        Rows of :meth:`Experiment.run`.
    references : dict, default=None
        The adequacy references (condition key -> clean accuracy), or None.

    Returns
    -------
    claims : dict
        protocol -> claim number -> ``(header, rows, verdict, reason, parts)``:
        a claim that joins statements is judged part by part (``parts``:
        ``(statement, verdict, counts)``), and its verdict is its weakest
        part's (:func:`~structnoise.evaluation.paired.weakest`).

    Examples
    --------
    >>> import pandas as pd
    >>> from structnoise.evaluation import COLUMNS
    >>> from structnoise.evaluation.report import claim_tables
    >>> claim_tables(pd.DataFrame(columns=COLUMNS))
    {}
    """
    if not len(results):
        return {}
    results = _standard(results)
    summary = summarise(results)
    matched = _matched(results)
    undertrained = undertrained_conditions(adequacy_table(results, references))
    diffs = paired_differences(results, undertrained=undertrained)
    out = {}
    for protocol in dict.fromkeys(results.eval_protocol):
        d = diffs[diffs.eval_protocol == protocol]
        out[protocol] = {1: _claim1(summary, results, protocol, matched, d), 2: _claim2(d),
                         3: _claim3(d)}
    return out


def _cmp(d, label, eval_label, comparison):
    """The paired comparison row, or None."""
    r = d[(d.noise_label == label) & (d.eval_label == eval_label) & (d.comparison == comparison)]
    return None if not len(r) else r.iloc[0]


def _fmt_cmp(r):
    if r is None:
        return "n/a"
    if r["n_seeds"] < 2:
        return f"{r['mean']:+.3f} (1 seed) {r['verdict']}"
    return f"{r['mean']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}] {r['verdict']}"


def _joined(parts, what):
    """A claim of several statements: each part's verdict, the claim's the weakest part's.

    ``parts`` is a list of ``(statement, verdicts of its comparisons)``;
    returns ``(verdict, reason, [(statement, verdict, counts text)])``.
    """
    judged = [(name, combine(v), _counts(v)) for name, v in parts]
    verdict_ = weakest([v for _, v, _ in judged])
    return verdict_, (f"{what}. Each part's verdict combines its comparisons (rule: "
                      f"{COMBINE_RULE}); the claim's is its weakest part's"), judged


def _counts(verdicts):
    counts = {v: list(verdicts).count(v) for v in dict.fromkeys(verdicts)}
    return ", ".join(f"{n} {v}" for v, n in counts.items()) or "none measured"


def _claim1(summary, results, protocol, matched, d):
    header = (["evaluation"] + [c for c, _ in _COLUMNS] + ["full - none", "full - identity",
                                                           "paper (FashionMNIST)"])
    rows, vs_none, iso_attacks, iso_mods = [], [], [], []
    by_eval = results.drop_duplicates(["noise_label", "noise_family", "noise_strength"])
    for family, strength, kind, ts in sorted(matched, key=lambda k: (k[2], k[0], k[1])):
        cells = {st: _cell(summary, protocol, family, strength, st, family, strength, ts)
                 for _, st in _COLUMNS}
        labels = by_eval[(by_eval.noise_family == family) & np.isclose(
            by_eval.noise_strength.astype(float), strength)].noise_label
        label = labels.iloc[0] if len(labels) else None
        c_none, c_iso = (_cmp(d, label, label, c) for c in ("full - none", "full - identity"))
        vs_none += [c_none["verdict"]] if c_none is not None else []
        (iso_attacks if kind == "adversarial" else iso_mods).extend(
            [c_iso["verdict"]] if c_iso is not None else [])
        paper = PAPER_NUMBERS.get((family, float(strength)))
        rows.append([f"{family} {_unit(results, family)} {strength:g} (tr={ts:g})"]
                    + [_fmt(cells[st]) for _, st in _COLUMNS]
                    + [_fmt_cmp(c_none), _fmt_cmp(c_iso)]
                    + [" / ".join(f"{v:.2f}" for v in paper) if paper else "n/a"])
    # the worst case over the attacks at each attack-shaped noise's own eps:
    # robust accuracy as AutoAttack counts it, with the structure that noise learned
    worst = d[(d.eval_family == WORST_CASE) & (d.noise_kind == "adversarial")
              & np.isclose(d.eval_strength.astype(float), d.noise_strength.astype(float))]
    for (label, eval_label), part in worst.groupby(["noise_label", "eval_label"], sort=False):
        r = part.iloc[0]
        family = by_eval[by_eval.noise_label == label].noise_family.iloc[0]
        ts = float(r["trace_scale"])
        cells = {st: _cell(summary, protocol, WORST_CASE, float(r["eval_strength"]), st, family,
                           float(r["noise_strength"]), None if ts != ts else ts)
                 for _, st in _COLUMNS}
        c_none, c_iso = (_cmp(d, label, eval_label, c) for c in ("full - none",
                                                                  "full - identity"))
        vs_none += [c_none["verdict"]] if c_none is not None else []
        iso_attacks += [c_iso["verdict"]] if c_iso is not None else []
        rows.append([f"{eval_label}, noise from {label}" + ("" if ts != ts else f" (tr={ts:g})")]
                    + [_fmt(cells[st]) for _, st in _COLUMNS]
                    + [_fmt_cmp(c_none), _fmt_cmp(c_iso), "n/a"])
    verdict_, reason, parts = _joined(
        [("full noise beats no noise (full - none, every matched evaluation and worst case)",
          vs_none),
         ("full noise beats identity noise on attacks (full - identity, matched attacks and "
          "the worst case)", iso_attacks),
         ("full noise beats identity noise on modifications (full - identity, matched "
          "modifications)", iso_mods)],
        "Three statements, judged one by one from the paired comparisons (over seeds)")
    return header, rows, verdict_, reason, parts


def _row(values, undertrained):
    diff = np.asarray(values, dtype=float)
    mean, low, high = t_interval(diff)
    n = len(diff)
    v = UNDERTRAINED if undertrained else verdict(low, high, n)
    return {"mean": mean, "low": low, "high": high, "n_seeds": n, "verdict": v}


def _claim2(d):
    header = ["noise from", "full - identity, own modification",
              "own gain - transfer gain (full - none)"]
    nat = d[d.noise_kind == "naturalistic"]
    rows, helps, poorly, most_verdicts = [], [], [], []
    structure_nat, structure_adv = [], []
    for label in dict.fromkeys(nat.noise_label):
        mine = nat[nat.noise_label == label]
        own_family = mine[mine.matched].eval_family
        own_iso = _cmp(d, label, label, "full - identity")
        own = _cmp(d, label, label, "full - none")
        others = mine[(mine.comparison == "full - none") & (mine.eval_kind == "naturalistic")
                      & (~mine.eval_family.isin(own_family))]
        transfer = None
        if own is not None and len(others):
            per = [np.asarray(own.per_seed)] + [np.asarray(p) for p in others.per_seed]
            if len({len(p) for p in per}) == 1:
                under = own.verdict == UNDERTRAINED or (others.verdict == UNDERTRAINED).any()
                transfer = _row(per[0] - np.mean(per[1:], axis=0), under)
        if own_iso is not None:
            helps.append(own_iso["verdict"])
            structure_nat.append(own_iso)
        if transfer is not None:
            poorly.append(transfer["verdict"])
        rows.append([label, _fmt_cmp(own_iso), _fmt_cmp(transfer)])
    adv = d[(d.noise_kind == "adversarial") & d.matched & (d.comparison == "full - identity")]
    structure_adv = list(adv.itertuples(index=False))
    if structure_nat and structure_adv:
        nat_mean = np.mean([np.asarray(r.per_seed) for r in structure_nat], axis=0)
        adv_mean = np.mean([np.asarray(r.per_seed) for r in structure_adv], axis=0)
        if nat_mean.shape == adv_mean.shape:
            under = any(r["verdict"] == UNDERTRAINED for r in structure_nat) or any(
                r.verdict == UNDERTRAINED for r in structure_adv)
            most = _row(nat_mean - adv_mean, under)
            most_verdicts.append(most["verdict"])
            rows.append(["structure gain (full - identity), modifications - attacks",
                         _fmt_cmp(most), ""])
    if not len(nat):
        return header, rows, "not measured", ("needs naturalistic noise sources with their "
                                              "full, identity and noise-free networks"), []
    return (header, rows) + _joined(
        [("the structure helps on its own modification (full - identity)", helps),
         ("it transfers poorly to other modifications (own gain - transfer gain)", poorly),
         ("it helps most for modifications (structure gain on modifications - on attacks)",
          most_verdicts)],
        "Three statements, judged one by one from the paired comparisons (over seeds)")


def _claim3(d):
    header = ["noise from", "evaluated on", "full - none", "full - identity"]
    # the worst case holds the noise's own attack: not a transfer to another
    adv = d[(d.noise_kind == "adversarial") & (d.eval_kind == "adversarial") & ~d.matched
            & (d.eval_family != WORST_CASE)]
    adv = adv[np.isclose(adv.eval_strength.astype(float), adv.noise_strength.astype(float))]
    rows, vs_none, vs_iso = [], [], []
    for (label, eval_label), _ in adv.groupby(["noise_label", "eval_label"], sort=False):
        c_none, c_iso = (_cmp(d, label, eval_label, c) for c in ("full - none",
                                                                  "full - identity"))
        vs_none += [c_none["verdict"]] if c_none is not None else []
        vs_iso += [c_iso["verdict"]] if c_iso is not None else []
        rows.append([label, eval_label, _fmt_cmp(c_none), _fmt_cmp(c_iso)])
    if not rows:
        return header, rows, "not measured", "needs two or more attacks at one eps", []
    return (header, rows) + _joined(
        [("full noise beats no noise on other attacks (full - none)", vs_none),
         ("full noise beats identity noise on other attacks (full - identity)", vs_iso)],
        "Two statements, judged one by one from the paired comparisons (over seeds)")


def _standard(results):
    """Rows of networks trained on clean images (no augmentation baseline)."""
    if "train_family" not in results:
        return results
    return results[results.train_family == STANDARD]


def baseline_table(results, protocol):
    """The supplement's baselines: augmentation alone and with the noise, vs standard.

    Parameters
    ----------
    results : pandas.DataFrame
        Rows of :meth:`Experiment.run`.
    protocol : {"paper", "eot"}
        Evaluation protocol.

    Returns
    -------
    header, rows : list
        A markdown-ready table: one row per training (standard, each
        augmentation) and structure, one column per evaluation.

    Examples
    --------
    >>> import pandas as pd
    >>> from structnoise.evaluation import COLUMNS
    >>> from structnoise.evaluation.report import baseline_table
    >>> baseline_table(pd.DataFrame(columns=COLUMNS), "paper")
    ([], [])
    """
    if "train_family" not in results or not (results.train_family != STANDARD).any():
        return [], []
    aug = results[results.train_family != STANDARD]
    combined = aug[aug.structure == "full"][["noise_family", "noise_strength"]]
    keep = results.train_family != STANDARD
    keep |= results.structure == "none"
    if len(combined):
        fam, st = combined.iloc[0]
        keep |= (results.structure == "full") & (results.noise_family == fam) & np.isclose(
            results.noise_strength.astype(float), st)
    frame = results[keep & (results.eval_protocol == protocol)]
    s = summarise(frame)
    evals = s[["eval_family", "eval_strength"]].drop_duplicates().sort_values(
        ["eval_family", "eval_strength"])
    header = ["training", "noise"] + [f"{f} {v:g}" if v == v else f
                                      for f, v in evals.itertuples(index=False)]
    rows = []
    conds = s[["train_family", "train_strength", "train_ratio", "structure", "noise_family"]] \
        .drop_duplicates().sort_values(["train_family", "train_strength", "train_ratio",
                                        "structure"])
    for tf, ts, tr, st, nf in conds.itertuples(index=False):
        part = s[(s.train_family == tf) & (s.structure == st) & (s.noise_family == nf)]
        if tf != STANDARD:
            part = part[np.isclose(part.train_strength.astype(float), ts)
                        & np.isclose(part.train_ratio.astype(float), tr)]
        label = STANDARD if tf == STANDARD else f"{tf} {ts:g} (ratio {tr:g})"
        cells = []
        for f, v in evals.itertuples(index=False):
            c = part[(part.eval_family == f) & ((part.eval_strength == v)
                                                 | (part.eval_strength.isna() & (v != v)))]
            cells.append(_fmt((float(c["mean"].iloc[0]), float(c["ci"].iloc[0])))
                         if len(c) else "n/a")
        rows.append([label, "none" if st == "none" else f"{st} ({nf})"] + cells)
    return header, rows


def _unit(results, family):
    units = results.loc[results.eval_family == family, "eval_strength_unit"]
    unit = str(units.iloc[0]) if len(units) else ""
    return {"eps": "eps", "severity": "sev", "strength": "s"}.get(unit, unit)


def _signed(v):
    return "n/a" if v is None or v != v else f"{v:+.3f}"


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(map(str, r)) + " |" for r in rows]


def _save(fig, path, **kwargs):
    """A figure written whole or not at all (PNG, 110 dpi)."""
    write_atomic(path, lambda fh: fig.savefig(fh, format="png", dpi=110, **kwargs))


def _forest_plot(results, plt, comparisons=("full - identity", "full - none")):
    """Paired differences with their intervals, one row per evaluation and comparison.

    One panel per protocol, 0 marked: a reader sees at a glance which
    comparisons lie above it (supported), below it (contradicted) or across
    it (inconclusive).
    """
    diffs = paired_differences(results)
    diffs = diffs[diffs.comparison.isin(comparisons)]
    if not len(diffs):
        return None
    protocols = list(dict.fromkeys(diffs.eval_protocol))
    first = diffs[diffs.eval_protocol == protocols[0]]
    order = list(dict.fromkeys(zip(first.noise_label, first.eval_label, first.comparison,
                                   strict=True)))
    height = max(2.5, 0.17 * len(order) + 1.0)
    fig, axes = plt.subplots(1, len(protocols), figsize=(4.2 * len(protocols) + 2.5, height),
                             sharey=True, squeeze=False)
    colours = {v: c for v, c in zip(("supported", "contradicted", "inconclusive"),
                                    ("C2", "C3", "0.5"), strict=True)}
    for ax, protocol in zip(axes[0], protocols, strict=True):
        part = diffs[diffs.eval_protocol == protocol].set_index(
            ["noise_label", "eval_label", "comparison"])
        for i, key in enumerate(order):
            if key not in part.index:
                continue
            r = part.loc[key]
            low = r["low"] if r["low"] == r["low"] else r["mean"]
            high = r["high"] if r["high"] == r["high"] else r["mean"]
            colour = colours.get(r["verdict"], "0.5")
            ax.plot([low, high], [i, i], color=colour, lw=1.5)
            ax.plot([r["mean"]], [i], "o", color=colour, ms=3)
        ax.axvline(0.0, color="k", lw=0.8)
        ax.set_title(f"{protocol} protocol", fontsize=9)
        ax.set_xlabel("paired difference in accuracy (95% t-interval over seeds)", fontsize=7)
    axes[0][0].set_yticks(range(len(order)))
    axes[0][0].set_yticklabels([f"{n} -> {e}: {c}" for n, e, c in order], fontsize=6)
    axes[0][0].invert_yaxis()
    fig.suptitle("paired differences: green supported, red contradicted, grey inconclusive",
                 fontsize=9)
    fig.tight_layout()
    return fig


def write_figures(results, out):
    """Accuracy vs eps (both protocols), the transfer heatmap, accuracy vs strength.

    Parameters
    ----------
    results : pandas.DataFrame
        Rows of :meth:`Experiment.run`.
    out : str
        Directory for the PNG files.

    Returns
    -------
    names : list of str
        The files written.

    Examples
    --------
    >>> import pandas as pd
    >>> from structnoise.evaluation import COLUMNS
    >>> from structnoise.evaluation.report import write_figures
    >>> write_figures(pd.DataFrame(columns=COLUMNS), ".")
    []
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plotting import plot_transfer_matrix
    from .views import transfer_table

    if not len(results):
        return []
    results = _standard(results)
    summary = summarise(results)
    names = []
    # the protocols in the rows, in their order: line styles for the curves;
    # the heatmap and the modification curves use the paper's when present
    protocols = list(dict.fromkeys(results.eval_protocol))
    first = "paper" if "paper" in protocols else protocols[0]
    adv_fams = [f for f in ("LinfPGD", "FGSM", "AutoPGD", "AutoPGD-DLR", "SquareAttack",
                            WORST_CASE)
                if (summary.eval_family == f).any()]
    if adv_fams:
        eps_max = float(summary.loc[summary.eval_family.isin(adv_fams), "eval_strength"].max())
        fig, axes = plt.subplots(1, len(adv_fams), figsize=(3.6 * len(adv_fams), 3.2),
                                 squeeze=False, sharex=True)
        for ax, fam in zip(axes[0], adv_fams, strict=True):
            s = summary[summary.eval_family == fam]
            noise_strength = s[s.noise_family == fam].noise_strength.dropna()
            for (label, st), colour in zip(_COLUMNS, ("C0", "C1", "C2", "C3"), strict=True):
                for protocol, style in zip(protocols, ("-", "--", ":", "-."), strict=False):
                    part = s[(s.structure == st) & (s.eval_protocol == protocol)]
                    if st in ("full", "diagonal"):
                        part = part[(part.noise_family == fam) & np.isclose(
                            part.noise_strength.astype(float),
                            noise_strength.iloc[0] if len(noise_strength) else np.nan)]
                    part = part.sort_values("eval_strength")
                    if len(part):
                        ax.errorbar(part.eval_strength, part["mean"],
                                    yerr=part["ci"].fillna(0), ls=style, color=colour,
                                    marker="o", ms=3, capsize=2,
                                    label=f"{label} ({protocol})")
            ax.set_title(fam)
            ax.set_xlabel("eps (L-inf)")
            ax.set_ylim(0, 1)
            # one eps axis for every attack: one measured at a single eps is a
            # point on it, not a panel zoomed to that eps
            ax.set_xlim(0, eps_max * 1.05)
        axes[0][0].set_ylabel("accuracy (ensemble)")
        axes[0][-1].legend(fontsize=6)
        styles = zip(protocols, ("solid", "dashed", "dotted", "dash-dot"), strict=False)
        fig.suptitle("accuracy vs eps: " + ", ".join(f"{p} ({st})" for p, st in styles),
                     fontsize=9)
        fig.tight_layout()
        _save(fig, os.path.join(out, "accuracy_vs_eps.png"))
        plt.close(fig)
        names.append("accuracy_vs_eps.png")
    if (results.eval_kind == "naturalistic").any() and \
            (results.noise_kind == "naturalistic").any():
        table = transfer_table(results, structure="full", protocol=first,
                               eval_kind="naturalistic")
        table.index = [f"{f} {s:g} [{st}]" if s == s else f"{f} [{st}]"
                       for f, s, st in table.index]
        table.columns = [f"{f} {s:g}" for f, s in table.columns]
        fig = plot_transfer_matrix(table, baseline=next(
            (r for r in table.index if r.startswith("none")), None),
            title="naturalistic transfer: accuracy gain over no noise (full noise)")
        _save(fig, os.path.join(out, "transfer_heatmap.png"), bbox_inches="tight")
        plt.close(fig)
        names.append("transfer_heatmap.png")
    forest = _forest_plot(results, plt)
    if forest is not None:
        _save(forest, os.path.join(out, "paired_differences.png"), bbox_inches="tight")
        plt.close(forest)
        names.append("paired_differences.png")
    mods = [f for f in results.loc[results.eval_kind == "naturalistic", "eval_family"].unique()]
    if mods:
        fig, axes = plt.subplots(1, len(mods), figsize=(3.6 * len(mods), 3.2), squeeze=False)
        for ax, fam in zip(axes[0], mods, strict=True):
            s = summary[(summary.eval_family == fam) & (summary.eval_protocol == first)]
            for label, st in _COLUMNS:
                part = s[s.structure == st]
                if st in ("full", "diagonal"):
                    part = part[part.noise_family == fam]
                part = part.sort_values("eval_strength")
                if len(part):
                    ax.errorbar(part.eval_strength, part["mean"], yerr=part["ci"].fillna(0),
                                marker="o", ms=3, capsize=2, label=label)
            ax.set_title(fam)
            ax.set_xlabel(str(s.eval_strength_unit.iloc[0]) if len(s) else "")
            ax.set_ylim(0, 1)
        axes[0][0].set_ylabel("accuracy (ensemble)")
        axes[0][-1].legend(fontsize=7)
        fig.tight_layout()
        _save(fig, os.path.join(out, "accuracy_vs_strength.png"))
        plt.close(fig)
        names.append("accuracy_vs_strength.png")
    return names


def write_report(preset_name, dataset, reductions, results, checks, out, seconds, machine="",
                 references=None, worst_case_notes=()):
    """Write ``report.md`` (and the figures) for a run; return its text.

    Parameters
    ----------
    preset_name : str
        The preset that ran.
    dataset : str
        The data set's name.
    reductions : list of str
        What the run changed from the paper's protocol.
    results : pandas.DataFrame
        Rows of :meth:`Experiment.run` (several experiments concatenated,
        with an ``experiment`` column, are reported per experiment).
    checks : pandas.DataFrame
        The obfuscation checks' records.
    out : str
        Output directory.
    seconds : float
        Wall time of the run.
    machine : str, default=""
        A description of the machine.
    references : dict, default=None
        Clean-accuracy references of the conditions
        (:data:`~structnoise.evaluation.presets.ADEQUACY_REFERENCES` of the
        data set), or None when no full run has measured them.
    worst_case_notes : sequence of str, default=()
        Worst cases the experiment could not compute, and why
        (:attr:`Experiment.worst_case_notes_`): the report lists them.

    Returns
    -------
    text : str
        The report.

    Examples
    --------
    >>> import pandas as pd, tempfile
    >>> from structnoise.evaluation import COLUMNS
    >>> from structnoise.evaluation.report import write_report
    >>> text = write_report("tiny", "digits", [], pd.DataFrame(columns=COLUMNS),
    ...                     pd.DataFrame(), tempfile.mkdtemp(), 1.0)
    >>> text.startswith("# structnoise")
    True
    """
    os.makedirs(out, exist_ok=True)
    seeds = sorted(results.seed.unique()) if len(results) else []
    lines = [f"# structnoise: the paper's protocol on {dataset}, both ways", "",
             f"Preset `{preset_name}`: {len(seeds)} seed(s), {len(results)} rows, "
             f"{seconds:.0f} s for the part computed in this run. {machine}", "",
             "Every network is evaluated twice on the same weights: **paper** (each "
             "gradient or query of an attack sees one noise draw; the accuracy is that of "
             "the network's noise ensemble, as the authors do with 10 draws) and **eot** "
             "(AutoAttack's rand version: each gradient or query of the attack averages "
             "several noise draws; the accuracy is that of the ensemble on fresh draws). "
             "Clean and naturalistic accuracies need "
             "no gradient and are the same measurement under both. Accuracy cells: mean ± 95% "
             "t-interval over seeds. Comparisons (full - identity, ...) are paired: the "
             "per-seed differences of two conditions that share the seed's base network and "
             "test images, mean [95% t-interval] over seeds, **supported** when the interval "
             "lies above 0, **contradicted** below, **inconclusive** when it straddles 0. "
             "The paper's numbers are FashionMNIST (Full / Diagonal "
             "/ Identity / None), a different data set when this run is on MNIST.", ""]
    if reductions:
        lines += ["## Reductions from the paper's protocol", ""] + \
            [f"- {r}" for r in reductions] + [""]
    experiments = (list(results.groupby("experiment")) if "experiment" in results
                   else [("", results)])
    for name, part in experiments:
        part = part.drop(columns=["experiment"], errors="ignore")
        if name:
            lines += [f"# Experiment {name}", ""]
        lines += _adequacy_lines(part, references, dataset)
        tables = claim_tables(part, references)
        for k in (1, 2, 3):
            lines += [f"## Claim {k}: {CLAIMS[k]}", ""]
            for protocol, claims in tables.items():
                header, rows, claim_verdict, reason, parts = claims[k]
                lines += [f"**{protocol} protocol: {claim_verdict}.** {reason}.", ""]
                lines += [f"- {name}: **{part}** ({counts})" for name, part, counts in parts]
                lines += ([""] if parts else []) + _table(header, rows) + [""]
        lines += _worst_case_lines(part.drop(columns=["experiment"], errors="ignore"))
        lines += _paper_lines(part, dataset, references, reductions)
    if worst_case_notes:
        lines += ["## Worst cases not computed", ""] + [f"- {n}." for n in worst_case_notes] \
            + [""]
    for name, part in experiments:
        for protocol in sorted(part.eval_protocol.unique()):
            header, rows = baseline_table(part.drop(columns=["experiment"], errors="ignore"),
                                          protocol)
            if rows:
                lines += [f"## Baselines{' ' + name if name else ''}: training-time "
                          f"augmentation, {protocol} protocol", ""] + _table(header, rows) + [""]
    lines += [f"## Claim 4: {CLAIMS[4]}", "",
              "**Holds by construction, under both protocols.** Each layer's fitter is "
              "fitted on that layer's activation pairs only; no information crosses layers. "
              "A property of the method, not a finding.", "",
              "## Obfuscation checks", ""]
    if checks is not None and len(checks):
        for r in checks.itertuples(index=False):
            flag = "PASS" if bool(r.passed) else "**FLAG**"
            tr = "" if r.trace_scale != r.trace_scale else f", tr={r.trace_scale:g}"
            lines.append(f"- {flag} [{r.structure} noise from {r.noise_family}{tr}, "
                         f"ensemble {r.ensemble}] {r.check}: {r.detail}")
    else:
        lines.append("- (no checks in this run)")
    lines += _time_lines(results, seconds)
    figs = write_figures(results.drop(columns=["experiment"], errors="ignore"), out) \
        if len(results) else []
    lines += ["", "## Figures", ""] + [f"![{f}]({f})" for f in figs]
    lines += ["", "Rows: `results.csv` (tidy, one row per network, evaluation and protocol)."]
    text = "\n".join(lines) + "\n"
    write_atomic(os.path.join(out, "report.md"), lambda fh: fh.write(text.encode()))
    return text


def _adequacy_lines(results, references, dataset):
    """The report's adequacy section: each condition's clean accuracy beside its reference."""
    lines = ["## Adequacy: did the networks learn their task?", ""]
    table = adequacy_table(_standard(results), references)
    if references is None:
        lines += [f"No clean-accuracy references for {dataset} (no full run of the "
                  "`adequacy` preset yet): no adequacy verdict is made.", ""]
    else:
        lines += ["Each condition's mean clean accuracy over seeds beside its reference "
                  "(the same condition trained at full size: `--preset adequacy`). Within "
                  f"{TOLERANCE['none']:.0%} (no noise) or {TOLERANCE['noisy']:.0%} (noisy) "
                  "of it the networks are adequate; below, their comparisons are "
                  f"\"{UNDERTRAINED}\", never evidence against a claim.", ""]
    rows = [[r.structure, r.noise_label, "" if r.trace_scale != r.trace_scale
             else f"{r.trace_scale:g}", r.n_seeds, f"{r.clean:.4f}",
             "n/a" if r.reference != r.reference else f"{r.reference:.4f}",
             "n/a" if r.gap != r.gap else f"{r.gap:+.4f}", r.status]
            for r in table.itertuples(index=False)]
    lines += _table(["structure", "noise", "tr", "seeds", "clean", "reference", "gap",
                     "status"], rows) + [""]
    return lines


def _against(paper, low, high):
    """Where the paper's value lies against our interval: inside, above or below."""
    if low != low or high != high:
        return "n/a (1 seed)"
    if paper > high:
        return "above"
    if paper < low:
        return "below"
    return "inside"


def _direction(paper, verdict_):
    """Whether our verdict on a difference has the paper's sign."""
    if verdict_ not in ("supported", "contradicted"):
        return "undecided"
    ours = 1 if verdict_ == "supported" else -1
    return "same" if np.sign(paper) == ours else "opposite"


def paper_comparison(results, references=None):
    """Each of the paper's numbers and differences the run measured, held against our intervals.

    For every evaluation of :data:`~structnoise.evaluation.presets.PAPER_NUMBERS`
    that the run measured with the noise of that very source (the paper's
    table), under each protocol: the paper's Full, Diagonal, Identity and
    None accuracies against our mean and 95% t-interval over seeds, and its
    Full - Identity and Full - None against our paired interval, each marked
    **inside** (the paper's value lies in our interval), **above** or
    **below** it; for a difference, also whether our verdict has the paper's
    sign ("same", "opposite" or "undecided").

    Parameters
    ----------
    results : pandas.DataFrame
        Rows of :meth:`Experiment.run` (on the paper's data: FashionMNIST).
    references : dict, default=None
        The adequacy references (undertrained comparisons stay undecided).

    Returns
    -------
    comparison : pandas.DataFrame
        ``eval_protocol``, ``evaluation``, ``kind`` ("attack" or
        "modification"), ``quantity``, ``paper``, ``ours`` (mean), ``low``,
        ``high``, ``paper_is`` (inside, above or below) and ``direction``.

    Examples
    --------
    >>> import pandas as pd
    >>> from structnoise.evaluation import COLUMNS
    >>> from structnoise.evaluation.report import paper_comparison
    >>> len(paper_comparison(pd.DataFrame(columns=COLUMNS)))
    0
    """
    columns = ["eval_protocol", "evaluation", "kind", "quantity", "paper", "ours", "low",
               "high", "paper_is", "direction"]
    results = _standard(results)
    if not len(results):
        return pd.DataFrame(columns=columns)
    summary = summarise(results)
    undertrained = undertrained_conditions(adequacy_table(results, references))
    diffs = paired_differences(results, undertrained=undertrained)
    by_eval = results.drop_duplicates(["noise_label", "noise_family", "noise_strength"])
    out = []
    for protocol in dict.fromkeys(results.eval_protocol):
        d = diffs[diffs.eval_protocol == protocol]
        for family, strength, _, ts in _matched(results):
            paper = PAPER_NUMBERS.get((family, float(strength)))
            if paper is None:
                continue
            name = f"{family} {_unit(results, family)} {strength:g}"
            kind = "modification" if family in PAPER_MODIFICATIONS else "attack"
            for (column, st), value in zip(_COLUMNS, paper, strict=True):
                cell = _cell(summary, protocol, family, strength, st, family, strength, ts)
                if cell is None:
                    continue
                mean, ci = cell
                out.append([protocol, name, kind, column, value, mean, mean - ci, mean + ci,
                            _against(value, mean - ci, mean + ci), ""])
            labels = by_eval[(by_eval.noise_family == family) & np.isclose(
                by_eval.noise_strength.astype(float), strength)].noise_label
            label = labels.iloc[0] if len(labels) else None
            for quantity, other in (("Full - Identity", 2), ("Full - None", 3)):
                comparison = "full - identity" if other == 2 else "full - none"
                r = _cmp(d, label, label, comparison)
                if r is None:
                    continue
                value = paper[0] - paper[other]
                out.append([protocol, name, kind, quantity, value, r["mean"], r["low"],
                            r["high"], _against(value, r["low"], r["high"]),
                            _direction(value, r["verdict"])])
    return pd.DataFrame(out, columns=columns)


def _paper_lines(results, dataset, references, reductions):
    """The report's section holding the paper's numbers against ours (FashionMNIST only)."""
    lines = ["## The paper's numbers against ours", ""]
    if "fashion" not in str(dataset).lower():
        return lines + [f"The paper's numbers are on FashionMNIST; this run is on {dataset}, a "
                        "different data set: no number is held against them.", ""]
    table = paper_comparison(results, references)
    if not len(table):
        return lines + ["No evaluation of the paper's table was measured with its own noise.",
                        ""]
    lines += ["Each of the paper's numbers (FashionMNIST, its table) that this run measured, "
              "against our mean and 95% interval over seeds; each of its differences against "
              "our paired interval. **inside**: the paper's value lies in our interval; "
              "**above** / **below**: outside it. For a difference, also whether our verdict "
              "has the paper's sign.", ""]
    lines += _paper_claim_lines(table)
    for protocol, part in table.groupby("eval_protocol", sort=False):
        counts = part.groupby("paper_is").size().to_dict()
        signs = part[part.direction != ""].groupby("direction").size().to_dict()
        lines += [f"**{protocol} protocol**: " + ", ".join(
            f"{n} {w}" for w, n in counts.items()) + "; directions of the differences: "
            + (", ".join(f"{n} {w}" for w, n in signs.items()) or "none measured") + ".", ""]
        rows = [[r.evaluation, r.quantity, f"{r.paper:+.2f}" if "-" in r.quantity
                 else f"{r.paper:.2f}",
                 f"{r.ours:.3f} [{r.low:.3f}, {r.high:.3f}]", f"**{r.paper_is}**",
                 r.direction or ""] for r in part.itertuples(index=False)]
        lines += _table(["evaluation", "quantity", "paper", "ours [95% interval]", "paper is",
                         "direction"], rows) + [""]
    if reductions:
        lines += ["What could explain a gap (this run's reductions from the paper's protocol): "
                  + "; ".join(reductions) + ".", ""]
    return lines


def _paper_claim_lines(table):
    """Per claim and protocol: do the paper's numbers and directions reproduce, and where not.

    Claim 1 is the paper's table: its Full - None differences, and its
    Full - Identity on the attacks and on the modifications, each part with
    its own count of directions (the claim joins them), then its accuracies
    inside, above or below our intervals. Claims 2 and 3 compare noise from
    one source evaluated on another, which the paper's table does not hold.
    """
    lines = ["**The paper's claims, part by part, as its table states them.**", ""]
    parts = [("Full - None", "Full - None", None),
             ("Full - Identity on the attacks", "Full - Identity", "attack"),
             ("Full - Identity on the modifications", "Full - Identity", "modification")]
    for protocol, part in table.groupby("eval_protocol", sort=False):
        said = []
        for name, quantity, kind in parts:
            rows = part[(part.quantity == quantity)
                        & ((part.kind == kind) if kind else True)]
            if not len(rows):
                said.append(f"{name}: not measured")
                continue
            counts = rows.direction.value_counts()
            same, n = int(counts.get("same", 0)), len(rows)
            outcome = ("reproduces" if same == n else "does not reproduce"
                       if counts.get("opposite", 0) else "inconclusive")
            where = [f"{r.evaluation} ({r.direction})" for r in rows.itertuples(index=False)
                     if r.direction != "same"]
            said.append(f"{name}: {outcome} (the paper's sign in {same} of {n}"
                        + (f"; not in {', '.join(where)}" if where else "") + ")")
        numbers = part[~part.quantity.str.contains(" - ")]
        counts = numbers.paper_is.value_counts()
        outside = [f"{r.evaluation} {r.quantity} ({r.paper_is})"
                   for r in numbers.itertuples(index=False) if r.paper_is != "inside"]
        said.append(f"the paper's accuracies inside our intervals: {int(counts.get('inside', 0))}"
                    f" of {len(numbers)}" + (f"; outside: {', '.join(outside)}"
                                              if outside else ""))
        lines.append(f"- Claim 1, {protocol} protocol: " + "; ".join(said) + ".")
    lines += ["- Claims 2 and 3 compare noise learned from one source evaluated on another; "
              "the paper's table holds each source's noise on its own source only, so no "
              "number of it bears on them (see their sections above).", ""]
    return lines


def _worst_case_lines(results):
    """The worst case over attacks per condition, beside its weakest single attack."""
    results = _standard(results)
    worst = results[results.eval_family == WORST_CASE]
    if not len(worst):
        return []
    summary = summarise(results)
    lines = ["## Robust accuracy: the worst case over attacks", "",
             "An image counts as robust only if every attack at that eps left it correct "
             "(AutoAttack's robust accuracy), computed image by image from the stored "
             "per-image outcomes: no attack runs again. Beside it, the weakest single attack "
             "(the lowest mean accuracy of any one attack): the gap is what reporting attacks "
             "one by one overstates. On a noisy network each attack's outcomes are judged "
             "on fresh noise draws, so part of the gap is chance (an image near its "
             "boundary misjudged once in several judgements), as in AutoAttack's rand "
             "version. Mean ± 95% t-interval over seeds.", ""]
    for eval_label in dict.fromkeys(worst.eval_label):
        rows_w = worst[worst.eval_label == eval_label]
        eps = float(rows_w.eval_strength.iloc[0])
        attacks = results[(results.eval_kind == "adversarial")
                          & (results.eval_family != WORST_CASE)
                          & np.isclose(results.eval_strength.astype(float), eps)]
        members = list(dict.fromkeys(attacks.eval_label))
        lines += [f"**{eval_label}** over {', '.join(members)}.", ""]
        header = ["protocol", "structure", "noise", "tr", "worst case", "weakest single attack"]
        table = []
        for protocol in dict.fromkeys(rows_w.eval_protocol):
            s = summary[(summary.eval_protocol == protocol)]
            cells = s[s.eval_label == eval_label]
            singles = s[s.eval_label.isin(members)]
            for r in cells.itertuples(index=False):
                same_tr = singles.trace_scale.isna() if r.trace_scale != r.trace_scale \
                    else np.isclose(singles.trace_scale.astype(float), r.trace_scale)
                mine = singles[(singles.structure == r.structure)
                               & (singles.noise_label == r.noise_label) & same_tr]
                weakest = mine.loc[mine["mean"].idxmin()] if len(mine) else None
                table.append([protocol, r.structure, r.noise_label,
                              "" if r.trace_scale != r.trace_scale else f"{r.trace_scale:g}",
                              _fmt((r.mean, r.ci)),
                              "n/a" if weakest is None else
                              f"{_fmt((weakest['mean'], weakest['ci']))} ({weakest.eval_label})"])
        lines += _table(header, table) + [""]
    return lines


def _time_lines(results, seconds):
    """The report's time section: retraining and each evaluation, from the rows."""
    if not len(results):
        return []
    times = time_table(results.drop(columns=["experiment"], errors="ignore"))
    rows = [[r.phase, r.protocol, r.networks, f"{r.seconds:.0f}"]
            for r in times.itertuples(index=False)]
    rest = seconds - float(times.seconds.sum())
    lines = ["", "## Where the time went", "",
             "Seconds summed over the networks, from the rows (a clean or naturalistic "
             "evaluation is measured once and shared by the protocols)."]
    if rest >= 0:
        lines.append(f"The rest of the run, {rest:.0f} s of {seconds:.0f} s, went to the base "
                     "networks, the activation pairs, the noise fits, the obfuscation checks "
                     "and the report.")
    else:  # rows stored by an earlier, interrupted run took time this run did not
        lines.append(f"The rows include networks stored by an earlier run: this run's "
                     f"{seconds:.0f} s is less than their sum.")
    return lines + [""] + _table(["phase", "protocol", "networks", "seconds"], rows)


def summary_table(results):
    """Mean accuracy per condition and evaluation (a compact console table)."""
    s = summarise(results)
    s["evaluation"] = s.eval_family + " " + s.eval_strength.map(
        lambda v: "" if v != v else f"{v:g}")
    s["condition"] = s.structure + " (" + s.noise_family + s.trace_scale.map(
        lambda v: "" if v != v else f", tr={v:g}") + ")"
    return s.pivot_table(index=["evaluation", "eval_protocol"], columns="condition",
                         values="mean", aggfunc="mean").round(3)
