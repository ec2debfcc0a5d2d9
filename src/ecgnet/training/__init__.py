"""Training: the Lightning module (the science: loss, optimiser, validation metric) and `fit` (the run)."""
