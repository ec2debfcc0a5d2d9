"""Scripts that rebuild the committed write-ups from the committed runs, each run from the repository root as
``python -m reports.FOLDER.NAME`` (e.g. ``python -m reports.levers.table``)."""
