"""Using a run: an engine runs its model (:mod:`~ecgnet.inference.engines`: torch, ONNX Runtime fp32 or
int8), :class:`~ecgnet.inference.predictor.Predictor` turns records into diagnoses with it, following the
long-record policy of :mod:`~ecgnet.inference.windows`, and :mod:`~ecgnet.inference.batch` does so for many
records (files → rows and a CSV; arrays → probabilities)."""
