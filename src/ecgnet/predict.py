"""Diagnose one's own WFDB records with a trained run: probabilities per class, ranked, with the
fold-9 thresholds saying which count as positive, and the reader's warnings beside them.

How a record is covered: the model was trained and selected on PTB-XL's 10 s records, each scored as
the maximum over 2.5 s windows every 1.25 s. A record of up to 10 s is scored exactly so. A longer
record is cut into consecutive 10 s segments (the last one ends at the record's end), each segment is
scored like a PTB-XL record, and the segments' probabilities are averaged — so the whole record counts,
and a 60 s record is not pushed towards positives by a maximum over 4–6 times as many windows.
Two other coverings can be asked for (``long_records``): ``first`` scores only the first 10 s, ``windows``
takes the maximum over every window of the whole record.

A record whose amplitudes cannot be trusted (see :mod:`ecgnet.data.records`) keeps its probabilities
but gets no positive/negative call: the thresholds were set on calibrated PTB-XL signals.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ecgnet.bundled import resolve_checkpoint
from ecgnet.data.records import ECGRecord, read_ecg
from ecgnet.data.signals import SECONDS
from ecgnet.errors import ECGNetError
from ecgnet.evaluation.inference import window_starts, windowed_proba
from ecgnet.runs import load_run

_SEX = {"male": 0.0, "m": 0.0, "0": 0.0, "female": 1.0, "f": 1.0, "1": 1.0}
LONG_RECORDS = ("segments", "first", "windows")
ENGINES = ("torch", "onnx", "onnx-int8")  # onnx: the same windows' logits from ONNX Runtime (ecgnet.export)
WITHHELD = "no positive/negative calls: the amplitudes cannot be trusted (see the warnings above)"


class Predictor:
    def __init__(self, checkpoint: str | Path, long_records: str = "segments", engine: str = "torch"):
        if long_records not in LONG_RECORDS:
            raise ECGNetError(f"--long-records must be one of {', '.join(LONG_RECORDS)}, not '{long_records}'")
        if engine not in ENGINES:
            raise ECGNetError(f"--engine must be one of {', '.join(ENGINES)}, not '{engine}'")
        self.long_records = long_records
        checkpoint = resolve_checkpoint(checkpoint)  # a path, or a bundled model's name
        self.model, self.config, self.info = load_run(checkpoint)
        self.run_dir = Path(checkpoint) if Path(checkpoint).is_dir() else Path(checkpoint).parent
        self.classes = self.info["classes"]
        self.rate = self.config.data.sampling_rate
        self.window, self.stride = self.config.data.window, self.config.data.stride
        self.uses_metadata = "metadata" in getattr(self.model, "modalities", ())
        self.thresholds = self._thresholds()
        if engine in ("onnx", "onnx-int8"):  # RUN/model.onnx (else exported in memory now) or RUN/model.int8.onnx
            from ecgnet.export import onnx_engine

            self.model = onnx_engine(self, int8=engine == "onnx-int8")  # called like the torch model

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

    def segments(self, samples: int) -> list[int]:
        """Starts of the 10 s segments that cover a record of ``samples`` samples (just the first one
        with ``long_records="first"``; with ``"windows"`` the record is one segment)."""
        starts = window_starts(samples, SECONDS * self.rate, SECONDS * self.rate)
        return starts[:1] if self.long_records in ("first", "windows") else starts

    def _segment_length(self, samples: int) -> int:
        return samples if self.long_records == "windows" else SECONDS * self.rate

    def predict_signal(self, signal: np.ndarray, metadata: np.ndarray) -> np.ndarray:
        """(12, samples) mV → (classes,) probabilities, averaged over the record's 10 s segments."""
        if self.window and signal.shape[-1] < self.window:
            raise ECGNetError(f"{signal.shape[-1] / self.rate:.1f} s long; "
                              f"the model needs at least {self.config.data.crop_seconds:g} s")
        segment = self._segment_length(signal.shape[-1])
        starts = self.segments(signal.shape[-1])
        x = torch.as_tensor(np.stack([signal[:, s:s + segment] for s in starts]), dtype=torch.float32)
        m = torch.as_tensor(np.repeat(metadata[None], len(starts), 0), dtype=torch.float32)
        probs = windowed_proba(self.model, x, m, self.window, self.stride, self.config.data.aggregate)
        return probs.mean(0).numpy()

    def coverage(self, samples: int) -> str:
        """How the model sees a record of ``samples`` samples, in words."""
        how = (f"{self.config.data.crop_seconds:g} s windows every {self.config.data.stride_seconds:g} s, "
               f"{self.config.data.aggregate} over windows") if self.window else "the whole segment at once"
        n = len(self.segments(samples))
        if self.long_records == "first" and samples > SECONDS * self.rate:
            return f"the first {SECONDS} s of {samples / self.rate:.1f} s ({how})"
        if n == 1:
            return f"the whole {samples / self.rate:.1f} s ({how})"
        return (f"the whole {samples / self.rate:.1f} s as {n} segments of {SECONDS} s "
                f"(each: {how}), probabilities averaged over segments")

    def predict_record(self, record: ECGRecord, **metadata) -> dict:
        """One read record → its result (the JSON schema of ``ecgnet predict --json``)."""
        given = {k: v for k, v in metadata.items() if v is not None}
        header = {k: v for k, v in (("age", record.age), ("sex", record.sex)) if v is not None}
        used = {**header, **given} if self.uses_metadata else {}
        try:
            probs = self.predict_signal(record.signal, self.metadata_vector(**used))
        except ECGNetError as e:
            raise ECGNetError(f"{record.path}: {e}") from None
        warnings = list(record.warnings)
        if record.seconds > SECONDS + 0.5 / self.rate:
            warnings.append(f"longer than {SECONDS} s: {self.coverage(record.signal.shape[-1])}")
        calls = self.thresholds if self.thresholds and record.amplitude_trusted else None
        if self.thresholds and not record.amplitude_trusted:
            warnings.append(WITHHELD)
        descriptions = self.info.get("class_descriptions", {})
        ranked = sorted(zip(self.classes, probs.tolist()), key=lambda cp: -cp[1])
        diagnoses = [{"class": c, "probability": round(p, 4), "description": descriptions.get(c, ""),
                      "threshold": None if not self.thresholds else round(self.thresholds[c], 4),
                      "positive": None if calls is None else bool(p >= calls[c])} for c, p in ranked]
        return {"record": str(record.path), "model": self.info["name"], "seconds": round(record.seconds, 2),
                "source_rate": record.source_rate, "coverage": self.coverage(record.signal.shape[-1]),
                "metadata": used, "warnings": warnings, "amplitude_trusted": record.amplitude_trusted,
                "diagnoses": diagnoses, "positives": [d["class"] for d in diagnoses if d["positive"]]}

    def predict_file(self, path: str | Path, resample: bool = False, **metadata) -> dict:
        return self.predict_record(read_ecg(path, self.rate, resample=resample), **metadata)
