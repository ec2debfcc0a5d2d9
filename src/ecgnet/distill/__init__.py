"""Knowledge distillation: a single model (the student) learns a teacher run's probabilities as well as
the labels. :mod:`.teacher` computes and caches the teacher's soft targets once, :mod:`.loss` is the
distillation loss, :mod:`.data` gives each training crop its soft target, :mod:`.run` is ``ecgnet distill``."""
