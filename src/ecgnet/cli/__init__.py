"""The ``ecgnet`` command: parses options, calls the library, prints with rich. What a command does lives in the
library (each command imports it by name); what stays here is checking option values and printing.

One module per group of commands, in the order of the data's path: :mod:`~ecgnet.cli.data` (PTB-XL, manifests),
:mod:`~ecgnet.cli.training`, :mod:`~ecgnet.cli.evaluation`, :mod:`~ecgnet.cli.inference` (predict, report),
:mod:`~ecgnet.cli.deploy` (export, models, serve); :mod:`~ecgnet.cli.common` holds the application and what the
commands share, :mod:`~ecgnet.cli.help` how ``--help`` looks. Importing a module registers its commands.

Errors of user input (:class:`~ecgnet.errors.ECGNetError`), a full disk and an unwritable folder are printed as
one line on stderr with exit status 2 (:func:`~ecgnet.cli.common.friendly`).
"""

# importing a module registers its commands; --help lists them in this order, the data's path
from ecgnet.cli import data, training, evaluation, inference, deploy  # noqa: F401, I001
from ecgnet.cli.common import app, friendly

__all__ = ["app", "friendly"]
