import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from structnoise.plotting import plot_accuracy_curves, plot_transfer_matrix  # noqa: E402


def test_transfer_heatmap_annotates_gains(tmp_path):
    m = pd.DataFrame({"clean": [0.9, 0.91, 0.88], "fgsm": [0.3, 0.5, 0.4]},
                     index=["none", "fgsm", "fgsm [isotropic]"])
    fig = plot_transfer_matrix(m, baseline="none")
    texts = sorted(t.get_text() for t in fig.axes[0].texts)
    assert "+0.20" in texts and "+0.00" in texts
    fig.savefig(tmp_path / "m.png")
    assert (tmp_path / "m.png").stat().st_size > 0
    with pytest.raises(ValueError, match="baseline"):
        plot_transfer_matrix(m, baseline="missing")


def test_accuracy_curves_with_seed_spread():
    df = pd.DataFrame({"eps": [0, 0.1, 0, 0.1] * 2, "accuracy": [.9, .4, .92, .5, .9, .6, .9, .7],
                       "structure": ["none"] * 4 + ["full"] * 4})
    fig = plot_accuracy_curves(df, x="eps", hue="structure")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["none", "full"]
    with pytest.raises(ValueError, match="Column"):
        plot_accuracy_curves(df, x="budget", hue="structure")
