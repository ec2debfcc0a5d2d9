"""Diagnose one's own WFDB records with a trained run: probabilities per class, ranked, with the
fold-9 thresholds saying which count as positive."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ecgnet.data.signals import read_record
from ecgnet.errors import ECGNetError
from ecgnet.evaluation.inference import windowed_proba
from ecgnet.runs import load_run

_SEX = {"male": 0.0, "m": 0.0, "0": 0.0, "female": 1.0, "f": 1.0, "1": 1.0}


class Predictor:
    def __init__(self, checkpoint: str | Path):
        self.model, self.config, self.info = load_run(checkpoint)
        self.run_dir = Path(checkpoint) if Path(checkpoint).is_dir() else Path(checkpoint).parent
        self.classes = self.info["classes"]
        self.window, self.stride = self.config.data.window, self.config.data.stride
        self.thresholds = self._thresholds()

    def _thresholds(self) -> dict[str, float] | None:
        path = self.run_dir / "val" / "metrics.json"
        if not path.is_file():
            return None
        per_class = json.loads(path.read_text()).get("per_class", {})
        return {c: per_class[c]["threshold"] for c in self.classes if "threshold" in per_class.get(c, {})}

    def metadata_vector(self, age=None, sex=None, height=None, weight=None) -> np.ndarray:
        """The 8 metadata features, scaled as in training; unknown values are flagged missing."""
        if sex is not None and str(sex).lower() not in _SEX:
            raise ECGNetError(f"--sex must be male or female, not '{sex}'")
        raw = np.array([np.nan if age is None else min(float(age), 90.0),
                        np.nan if sex is None else _SEX[str(sex).lower()],
                        np.nan if height is None else float(height), np.nan if weight is None else float(weight)])
        scaler = self.info.get("metadata_scaler", {"mean": [0.0] * 4, "std": [1.0] * 4})
        scaled = (raw - np.asarray(scaler["mean"])) / np.asarray(scaler["std"])
        return np.concatenate([np.nan_to_num(scaled), np.isnan(raw).astype(float)]).astype(np.float32)

    def predict_signal(self, signal: np.ndarray, metadata: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(signal[None], dtype=torch.float32)
        m = torch.as_tensor(metadata[None], dtype=torch.float32)
        return windowed_proba(self.model, x, m, self.window, self.stride, self.config.data.aggregate)[0].numpy()

    def predict_file(self, path: str | Path, resample: bool = False, **metadata) -> dict:
        signal = read_record(path, self.config.data.sampling_rate, resample=resample)
        if self.window and signal.shape[-1] < self.window:
            raise ECGNetError(f"{path}: {signal.shape[-1] / self.config.data.sampling_rate:.1f} s long; "
                              f"the model needs at least {self.config.data.crop_seconds:g} s")
        probs = self.predict_signal(signal, self.metadata_vector(**metadata))
        descriptions = self.info.get("class_descriptions", {})
        ranked = sorted(zip(self.classes, probs.tolist()), key=lambda cp: -cp[1])
        return {"record": str(path), "model": self.info["name"], "diagnoses": [
            {"class": c, "probability": round(p, 4), "description": descriptions.get(c, ""),
             "positive": None if not self.thresholds else bool(p >= self.thresholds[c])} for c, p in ranked]}
