"""Encoders (representation → embedding → logits), fusion, and the registry that builds models by name."""

from ecgnet.models.registry import build_model, list_models

__all__ = ["build_model", "list_models"]
