"""Figures: the transfer-matrix heatmap and accuracy-vs-strength curves."""

import numpy as np

__all__ = ["plot_transfer_matrix", "plot_accuracy_curves"]


def _figure(ax, figsize):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
    else:
        fig = ax.figure
    return fig, ax


def plot_transfer_matrix(matrix, *, baseline=None, ax=None, cmap=None, fmt="{:+.2f}",
                         title=None):
    """Annotated heatmap of a transfer matrix (noise source x eval source).

    Parameters
    ----------
    matrix : pandas.DataFrame
        Accuracies, rows the noise sources, columns the evaluation sources
        (as returned by :func:`structnoise.evaluation.transfer_matrix`).
    baseline : str, default=None
        A row (e.g. ``"none"``) subtracted from every row, so the cells show
        the accuracy gain over it; None shows the accuracies.
    ax : matplotlib Axes, default=None
        Where to draw (a new figure when None).
    cmap : str, default=None
        Colour map ("RdBu" for gains, "viridis" for accuracies).
    fmt : str, default="{:+.2f}"
        Format of the cell annotations.
    title : str, default=None
        Axes title.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from structnoise.plotting import plot_transfer_matrix
    >>> m = pd.DataFrame({"clean": [0.9, 0.92], "fgsm": [0.3, 0.5]}, index=["none", "fgsm"])
    >>> fig = plot_transfer_matrix(m, baseline="none")
    >>> fig.axes[0].get_title()
    'accuracy gain over none'
    """
    values = matrix.astype(float)
    if baseline is not None:
        if baseline not in values.index:
            raise ValueError(f"baseline {baseline!r} is not a row of the matrix: "
                             f"{list(values.index)}.")
        values = values - values.loc[baseline]
    data = values.to_numpy()
    fig, ax = _figure(ax, (1.2 + 0.9 * data.shape[1], 1.0 + 0.5 * data.shape[0]))
    if baseline is not None:
        lim = max(float(np.nanmax(np.abs(data))), 1e-6)
        im = ax.imshow(data, cmap=cmap or "RdBu", vmin=-lim, vmax=lim, aspect="auto")
    else:
        im = ax.imshow(data, cmap=cmap or "viridis", vmin=0, vmax=1, aspect="auto")
        fmt = fmt if fmt != "{:+.2f}" else "{:.2f}"
    ax.set_xticks(range(data.shape[1]), [str(c) for c in values.columns], rotation=45,
                  ha="right")
    ax.set_yticks(range(data.shape[0]), [str(i) for i in values.index])
    ax.set_xlabel(values.columns.name or "eval source")
    ax.set_ylabel(values.index.name or "noise source")
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            ax.text(j, i, fmt.format(data[i, j]), ha="center", va="center", fontsize=8)
    fig.colorbar(im, ax=ax)
    ax.set_title(title or (f"accuracy gain over {baseline}" if baseline else "accuracy"))
    fig.tight_layout()
    return fig


def plot_accuracy_curves(frame, *, x, y="accuracy", hue, err=None, ax=None, xlabel=None,
                         title=None):
    """Accuracy against a strength (attack budget, severity), one line per group.

    Parameters
    ----------
    frame : pandas.DataFrame
        Long-format results.
    x : str
        Column of the strength.
    y : str, default="accuracy"
        Column of the accuracy.
    hue : str
        Column naming the lines (e.g. the noise structure).
    err : str, default=None
        Column of error bars (e.g. the std over seeds); None: computed as the
        std over repeated rows with the same (hue, x) when there are any.
    ax : matplotlib Axes, default=None
        Where to draw.
    xlabel, title : str, default=None
        Labels.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from structnoise.plotting import plot_accuracy_curves
    >>> df = pd.DataFrame({"eps": [0, .1, 0, .1], "accuracy": [.9, .4, .9, .6],
    ...                    "noise": ["none", "none", "full", "full"]})
    >>> fig = plot_accuracy_curves(df, x="eps", hue="noise")
    >>> len(fig.axes[0].lines) >= 2
    True
    """
    for col in [x, y, hue] + ([err] if err else []):
        if col not in frame.columns:
            raise ValueError(f"Column {col!r} not in the frame: {list(frame.columns)}.")
    fig, ax = _figure(ax, (5, 3.5))
    for name, group in frame.groupby(hue, sort=False):
        stats = group.groupby(x)[y].agg(["mean", "std", "count"]).sort_index()
        if err:
            e = group.groupby(x)[err].mean().reindex(stats.index).to_numpy()
        else:
            e = stats["std"].fillna(0).to_numpy() if stats["count"].max() > 1 else None
        ax.errorbar(stats.index.to_numpy(), stats["mean"].to_numpy(), yerr=e, marker="o",
                    capsize=3, label=str(name))
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(y)
    ax.set_ylim(-0.02, 1.02)
    ax.legend(title=hue, fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
