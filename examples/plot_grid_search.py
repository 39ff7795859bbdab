"""
Grid search over trace scale and structure
==========================================

``GridSearchCV`` with robust scorers: clean accuracy and accuracy under FGSM
(with EOT for the noisy networks), over the paper's trace normalisation
(``noise__trace_scale``) and the noise structure (full, diagonal and
isotropic, all with the same trace), refitting the most robust
configuration.
"""

import matplotlib.pyplot as plt
import pandas as pd
import torch
from sklearn.model_selection import GridSearchCV

from structnoise import NoisyNeuralNetClassifier, StructuredNoiseFitter
from structnoise.datasets import load_digits_images
from structnoise.models import DigitsMLP
from structnoise.scoring import robust_scoring
from structnoise.sources import FGSM

torch.manual_seed(0)
X, y = load_digits_images()
net = NoisyNeuralNetClassifier(DigitsMLP, noise=StructuredNoiseFitter(random_state=0),
                               noise_source=FGSM(eps=0.1), noise_layers="body.2",
                               max_epochs=10, lr=0.1, batch_size=32, train_split=None,
                               verbose=0)
grid = {"noise__trace_scale": [0.25, 1.0],
        "noise__structure": ["full", "diagonal", "isotropic"]}
search = GridSearchCV(net, grid, cv=2, n_jobs=2, refit="fgsm",
                      scoring=robust_scoring({"fgsm": FGSM(eps=0.1)}, eot_samples=4))
search.fit(X[:800], y[:800])

pd.set_option("display.width", 140)
results = pd.DataFrame(search.cv_results_)
table = results[["param_noise__trace_scale", "param_noise__structure",
                 "mean_test_clean", "mean_test_fgsm"]]
print(table.sort_values("mean_test_fgsm", ascending=False).head())

# %%
fig, ax = plt.subplots(figsize=(5, 3.5))
for structure, g in results.groupby("param_noise__structure"):
    ax.plot(g.param_noise__trace_scale.astype(float), g.mean_test_fgsm, marker="o",
            label=structure)
ax.set_xlabel("trace scale (mean per-unit noise variance)")
ax.set_ylabel("accuracy under FGSM (EOT)")
ax.legend(fontsize=7)
fig.tight_layout()
