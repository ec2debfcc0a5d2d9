"""``python -m ecgnet.cli …``: the ``ecgnet`` command without its entry point."""

from ecgnet.cli import app

app()
