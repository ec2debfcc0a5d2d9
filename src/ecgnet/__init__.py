"""ECGNet: multimodal 12-lead ECG diagnosis on PTB-XL."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ecgnet")  # the one source: pyproject.toml's version, as installed
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
