"""The three fusion strategies, each a model built by name: early (modalities joined at the input),
intermediate (hidden features combined mid-network), late (trained single-modality runs'
probabilities combined)."""

from ecgnet.models.fusion import early, intermediate, late  # noqa: F401  (registers the models)
