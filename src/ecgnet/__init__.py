"""ECGNet: multimodal 12-lead ECG diagnosis on PTB-XL."""

__version__ = "0.1.0"
