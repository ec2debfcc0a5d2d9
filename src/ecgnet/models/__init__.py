"""Encoders (representation → embedding → logits), fusion, and the registry that builds models by name.

Importing this package registers every model: each module below adds its builders to the registry.
"""

from ecgnet.models.registry import build_model, list_models, register
from ecgnet.models import fusion, unimodal  # noqa: E402,F401  (registers the models)

__all__ = ["build_model", "list_models", "register"]
