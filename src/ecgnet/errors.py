"""The one exception type users see: a clear message naming the file and what is wrong.

The CLI catches :class:`ECGNetError`, prints its message (no traceback) and exits with status 2.
Library code raises it at the boundary where user input (files, configs, options) is validated.
"""


class ECGNetError(Exception):
    """Bad user input or environment: the message says which file and what is wrong."""
