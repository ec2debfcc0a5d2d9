"""Modality frontends: torch modules turning a batch of raw signals into one representation each."""
