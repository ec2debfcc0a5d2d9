"""A run directory as one object: what training writes and what predict, serve, export, evaluate and
compare read.

- :mod:`~ecgnet.runs.directory` — the folder's layout, save and load (:func:`load_run`, :class:`Run`),
  the ``INCOMPLETE`` marker, the thresholds;
- :mod:`~ecgnet.runs.members` — an ensemble's members, described inside the run so it travels whole;
- :mod:`~ecgnet.runs.origin` — the revision, code digest, command and versions a run records;
- :mod:`~ecgnet.runs.describe` — a run in words from its files, without loading it (where its thresholds were chosen too);
- :mod:`~ecgnet.runs.bundled` — the runs shipped inside the package, chosen by name.

The names below are importable from ``ecgnet.runs`` itself; they are looked up when first used, so that
``ecgnet.runs.bundled`` and ``ecgnet.runs.describe`` (``ecgnet --help``, ``ecgnet models``) do not load
torch and the model registry.
"""

_DIRECTORY = ("INCOMPLETE", "Run", "count_parameters", "load_run", "mark_complete", "mark_incomplete",
              "read_thresholds", "refuse_incomplete", "save_model")
_ORIGIN = ("REVISION_ENV", "provenance", "source_digest")
__all__ = [*_DIRECTORY, *_ORIGIN]


def __getattr__(name: str):
    if name in _DIRECTORY:
        from ecgnet.runs import directory

        return getattr(directory, name)
    if name in _ORIGIN:
        from ecgnet.runs import origin

        return getattr(origin, name)
    raise AttributeError(f"module 'ecgnet.runs' has no attribute '{name}'")
