"""Why a model decides: modality ablation, gate/attention weights, and input attributions.

* :mod:`ecgnet.explain.ablation` — how much fold-10 macro AUC a fusion model loses when one modality
  is missing, and how its gate/attention weighs the modalities.
* :mod:`ecgnet.explain.attributions` — Integrated Gradients over leads × time and leads × frequency
  (captum), the per-class lead-importance table, and heatmap figures.
"""

from ecgnet.explain.ablation import modality_ablation, modality_weights
from ecgnet.explain.attributions import (find_frequency_frontend, frequency_attributions, lead_importance,
                                         plot_frequency_heatmap, plot_lead_importance, plot_time_heatmap,
                                         time_attributions)

__all__ = ["modality_ablation", "modality_weights", "time_attributions", "frequency_attributions",
           "find_frequency_frontend", "lead_importance", "plot_time_heatmap", "plot_frequency_heatmap",
           "plot_lead_importance"]
