"""Diagnose one's own records with a run: probabilities per class, ranked, with the run's thresholds
(chosen on fold 9, or on a manifest's records for a run trained on one) saying which count as positive,
and beside them the reader's warnings (what may make the result wrong: amplitudes, leads) and notes
(what was done as a matter of routine: resampled, a long record's covering).

A :class:`Predictor` is a run and an engine (:mod:`ecgnet.inference.engines`), both fixed when it is made;
records of any length are covered as :mod:`ecgnet.inference.windows` says.

A record whose amplitudes cannot be trusted (see :mod:`ecgnet.data.records`) keeps its probabilities
but gets no positive/negative call: the thresholds were set on calibrated PTB-XL signals.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ecgnet.data.leads import display
from ecgnet.data.limits import DEFAULT_LIMITS, ReadLimits
from ecgnet.data.patient import check_patient
from ecgnet.data.ptbxl import META_FEATURES, META_FIELDS, SEX_CODES, MetadataScaler, metadata_features
from ecgnet.data.readers import read_ecg_any
from ecgnet.data.records import LEADS, ECGRecord
from ecgnet.data.signals import SECONDS
from ecgnet.errors import ECGNetError
from ecgnet.inference import windows
from ecgnet.inference.engines import ENGINES, make_engine
from ecgnet.models.windows import windowed_proba
from ecgnet.runs.directory import Run

LONG_RECORDS = windows.LONG_RECORDS
WITHHELD = "no positive/negative calls: the amplitudes cannot be trusted (see the amplitude warnings)"
NO_THRESHOLD = ("no positive/negative call for {}: the run has no threshold for it (its validation records had no "
                "positive or no negative to choose one on); probability only")
METADATA_ONLY = ("this model does not read the ECG: its probabilities rest only on the patient's age, sex, height "
                 "and weight")
NOTHING_READ = ("no positive/negative calls: this model reads only the patient's age, sex, height and weight, and "
                "none is known")
PATIENT_FIELDS = ("age", "sex", "height", "weight")
LEAD_NAMES = tuple(display(lead) for lead in LEADS)  # as clinicians write them (aVR …)
SEGMENT_BATCH = 32  # 10 s segments run through the model at once (bounds a long record's memory)
LOW_THRESHOLD = 0.05  # a threshold under this is low (a rare class under Youden's J): see low_thresholds


def shown_diagnoses(result: dict, top: int) -> list[dict]:
    """What a short listing shows of a result: every positive class, then the most probable of the others
    until ``top`` are shown (positives are never cut, whatever ``top``)."""
    positives = [d for d in result["diagnoses"] if d["positive"]]
    others = [d for d in result["diagnoses"] if not d["positive"]]
    return positives + others[:max(0, top - len(positives))]


class Predictor:
    """``run``: a :class:`~ecgnet.runs.directory.Run`, or what :meth:`Run.open` takes (a run directory, its
    model.safetensors or a bundled model's name); ``engine``: one of :data:`ENGINES`."""

    def __init__(self, run: Run | str | Path, engine: str = "torch", long_records: str = "segments",
                 site: str | None = None):
        self.long_records = windows.check_policy(long_records)
        if engine not in ENGINES:
            raise ECGNetError(f"--engine must be one of {', '.join(ENGINES)}, not '{engine}'")
        self.run = run if isinstance(run, Run) else Run.open(run)
        self.engine_name = engine
        self.engine = make_engine(self.run, engine)
        self.profile = None  # a site's operating points (ecgnet calibrate), applied after the engine
        if site is not None:
            from ecgnet.runs.profiles import load_profile

            self.profile = load_profile(self.run.dir, site, self.classes)

    # what the callers read of the run
    config = property(lambda self: self.run.config)
    info = property(lambda self: self.run.info)
    run_dir = property(lambda self: self.run.dir)
    classes = property(lambda self: self.run.classes)
    descriptions = property(lambda self: self.run.descriptions, doc="{class: description}, the described ones")
    rate = property(lambda self: self.run.rate)
    window = property(lambda self: self.run.window)
    stride = property(lambda self: self.run.stride)
    thresholds = property(lambda self: self.profile.thresholds if self.profile else self.run.thresholds)
    thresholds_from = property(lambda self: self.run.thresholds_from, doc="where the run's thresholds were chosen")
    uses_metadata = property(lambda self: self.run.uses_metadata)
    reads_signal = property(lambda self: self.run.reads_signal)

    def calls_rule(self) -> str:
        """What makes a call positive, in one line (predict's header, the printed report)."""
        if self.profile is not None:
            return f"calibrated probability ≥ the class's threshold of site profile '{self.profile.site}'"
        if self.thresholds:
            return f"probability ≥ the class's threshold (chosen on {self.thresholds_from})"
        return "none (the run has no thresholds)"

    def low_threshold_classes(self, below: float = LOW_THRESHOLD) -> list[str]:
        """The classes whose threshold is under ``below``, lowest first (those :meth:`low_thresholds` names)."""
        return [c for _, c in sorted((t, c) for c, t in (self.thresholds or {}).items() if t < below)]

    def low_thresholds(self, below: float = LOW_THRESHOLD) -> str | None:
        """A note on the classes whose threshold is under ``below`` (rare classes under Youden's J): "positive"
        there means above it, not probable; None when there are none."""
        low = [(self.thresholds[c], c) for c in self.low_threshold_classes(below)]
        if not low:
            return None
        named = ", ".join(f"{c} {t:.3f}" for t, c in low[:4]) + (f" and {len(low) - 4} more" if len(low) > 4 else "")
        return (f"{len(low)} class{'es have' if len(low) > 1 else ' has'} a threshold under {below:g} ({named}): "
                "positive there means above that threshold, not a probable diagnosis — read the probability")

    def describe(self) -> str:
        """The model in one line: run name, engine and the weights' SHA-256 prefix."""
        return f"{self.info.get('name') or self.run_dir.name} ({self.engine_name}, weights {self.run.weights_sha256[:12]})"

    def metadata_vector(self, age=None, sex=None, height=None, weight=None) -> np.ndarray:
        """The 8 metadata features, encoded as in training (:func:`~ecgnet.data.ptbxl.metadata_features`: any age
        over 89 read as 90, …) and scaled with the run's training statistics; unknown values are flagged missing."""
        fields = check_patient(age, sex, height, weight, plausible=False)
        fields["sex"] = None if fields["sex"] is None else SEX_CODES[fields["sex"]]
        raw = metadata_features(*([np.nan if fields[f] is None else float(fields[f])] for f in META_FIELDS))
        scaler = self.info.get("metadata_scaler", {"mean": [0.0] * 4, "std": [1.0] * 4})  # none: unscaled
        return MetadataScaler(np.asarray(scaler["mean"]), np.asarray(scaler["std"])).transform(raw)[0]

    def segments(self, samples: int) -> list[int]:
        """Starts of the 10 s segments that cover a record of ``samples`` samples."""
        return windows.segment_starts(samples, self.rate, self.long_records)

    def coverage(self, samples: int) -> str:
        """How the model sees a record of ``samples`` samples, in words."""
        if not self.reads_signal:
            return "none of the ECG: only the patient's age, sex, height and weight"
        return windows.coverage(samples, self.rate, self.config.data, self.long_records)

    def predict_signal(self, signal: np.ndarray, metadata: np.ndarray) -> np.ndarray:
        """(12, samples) mV → (classes,) probabilities, averaged over the record's 10 s segments. ``metadata``:
        the 8 features of :meth:`metadata_vector` (all unknown: ``metadata_vector()``)."""
        signal = np.asarray(signal, dtype=np.float32)
        if signal.ndim != 2 or signal.shape[0] != len(LEADS):
            raise ECGNetError(f"the signal must be ({len(LEADS)}, samples) mV, leads first (I, II, III, aVR, aVL, "
                              f"aVF, V1–V6), at {self.rate} Hz; got shape {signal.shape}")
        if not np.isfinite(signal).all():
            raise ECGNetError("the signal has NaN or infinite samples")
        if metadata is None or np.shape(metadata) != (len(META_FEATURES),):
            raise ECGNetError(f"metadata must be the {len(META_FEATURES)} features of metadata_vector() (with no "
                              f"arguments when nothing is known); got {None if metadata is None else np.shape(metadata)}")
        metadata = np.asarray(metadata, dtype=np.float32)
        if self.window and signal.shape[-1] < self.window:
            raise ECGNetError(f"{signal.shape[-1] / self.rate:.1f} s long; "
                              f"the model needs at least {self.config.data.crop_seconds:g} s")
        segment = windows.segment_length(signal.shape[-1], self.rate, self.long_records)
        starts = self.segments(signal.shape[-1])
        m = torch.as_tensor(metadata[None], dtype=torch.float32)
        probs = []  # SEGMENT_BATCH segments at a time: an hour's 360 at once held > 1 GB of activations
        for i in range(0, len(starts), SEGMENT_BATCH):
            x = torch.as_tensor(np.stack([signal[:, s:s + segment] for s in starts[i:i + SEGMENT_BATCH]]),
                                dtype=torch.float32)
            probs.append(windowed_proba(self.engine, x, m.repeat(len(x), 1), self.window, self.stride,
                                        self.config.data.aggregate))
        return torch.cat(probs).mean(0).numpy()

    def predict_record(self, record: ECGRecord, **metadata) -> dict:
        """One read record → its result (the JSON schema of ``ecgnet predict --json``). ``record``: at the
        model's rate (``read_ecg_any(path, predictor.rate, resample=True)``), finite; ``metadata``: age (years),
        sex, height (cm), weight (kg), each finite (a dataset's own values are taken as they are — PTB-XL has
        heights of 6 cm, seen so in training; :func:`ecgnet.data.patient.check_patient` is the plausibility
        check the CLI and the viewer apply to what a user types)."""
        if record.sampling_rate != self.rate:  # a 500 Hz signal read as 100 Hz is five times too slow: wrong calls
            raise ECGNetError(f"{record.path}: at {record.sampling_rate:g} Hz, the model reads {self.rate:g} Hz "
                              f"(read it with read_ecg_any(path, {self.rate:g}, resample=True))")
        if not np.isfinite(record.signal).all():
            raise ECGNetError(f"{record.path}: the signal holds NaN or infinite values")
        misspelt = sorted(set(metadata) - set(PATIENT_FIELDS))
        if misspelt:
            raise ECGNetError(f"unknown patient field(s) {', '.join(misspelt)}: give {', '.join(PATIENT_FIELDS)}")
        given = {k: v for k, v in check_patient(**metadata, plausible=False).items() if v is not None}
        header = {k: v for k, v in (("age", record.age), ("sex", record.sex)) if v is not None}
        used = {**header, **given} if self.uses_metadata else {}
        try:
            probs = self.predict_signal(record.signal, self.metadata_vector(**used))
            if self.profile is not None:  # the site's calibration of the probabilities
                probs = self.profile.calibrate(probs)
        except ECGNetError as e:
            raise ECGNetError(f"{record.path}: {e}") from None
        warnings, notes = list(record.warnings), list(record.notes)
        unknown = [k for k in PATIENT_FIELDS if k not in used]
        if self.uses_metadata and unknown:  # flagged missing to the model, as in training; the user may know them
            notes.append(f"the model reads the patient's age, sex, height and weight; unknown here: {', '.join(unknown)} "
                         f"(flagged missing, as in training; --{' --'.join(unknown)} give them)")
        if record.seconds > SECONDS + 0.5 / self.rate and self.reads_signal:
            notes.append(f"longer than {SECONDS} s: {self.coverage(record.signal.shape[-1])}")
            fitted = (self.profile.data.get("long_records") or "segments") if self.profile is not None else None
            if fitted is not None and fitted != self.long_records:
                warnings.append(f"site profile '{self.profile.site}' was fitted with long records scored as "
                                f"'{fitted}', this one as '{self.long_records}' (--long-records {fitted} matches it)")
        thresholds = self.thresholds or {}
        blind = not self.reads_signal and not used  # a metadata-only model told nothing: its prior, not a diagnosis
        untrusted = self.reads_signal and not record.amplitude_trusted  # amplitudes matter to what reads them
        calls = thresholds if thresholds and not untrusted and not blind else {}
        if not self.reads_signal:
            warnings.insert(0, METADATA_ONLY)
            if thresholds and blind:
                warnings.insert(1, NOTHING_READ)
        if thresholds and untrusted:
            warnings.append(WITHHELD)
        unset = [c for c in self.classes if c not in thresholds]
        if thresholds and unset:  # a run trained on a collection where these classes had no positive (or negative)
            warnings.append(NO_THRESHOLD.format(", ".join(unset)))
        descriptions = self.descriptions
        ranked = sorted(zip(self.classes, probs.tolist()), key=lambda cp: -cp[1])
        # 6 decimals, as the prediction CSVs write them: evaluate and calibrate score these (4 tied p < 5e-5);
        # a class the run does not describe (a site's own class, whatever its name): "" — shown by its name alone
        diagnoses = [{"class": c, "probability": round(p, 6), "description": descriptions.get(c, ""),
                      "threshold": None if c not in thresholds else round(thresholds[c], 6),
                      "positive": None if c not in calls else bool(p >= calls[c])} for c, p in ranked]
        return {"record": str(record.path), "model": self.info["name"],
                "engine": self.engine_name, "weights_sha256": self.run.weights_sha256,  # which computation exactly
                # the site profile whose calibrated probabilities and thresholds these are (None: the run's own)
                "site": None if self.profile is None else self.profile.site,
                "calls": self.calls_rule(),  # what makes a call positive, and where the thresholds were chosen
                "seconds": round(record.seconds, 2),
                "source_rate": record.source_rate, "coverage": self.coverage(record.signal.shape[-1]),
                "metadata": used, "warnings": warnings, "notes": notes, "amplitude_trusted": record.amplitude_trusted,
                "quality": [{**q.to_dict(), "lead": display(q.lead)} for q in record.quality or []],  # as `leads`
                # what the file is and what its device said (never a model input: shown beside ECGNet's diagnosis)
                "format": record.format, "leads": list(LEAD_NAMES), "derived_leads": list(record.derived_leads),
                "statements": list(record.statements),
                "diagnoses": diagnoses, "positives": [d["class"] for d in diagnoses if d["positive"]]}

    def predict_file(self, path: str | Path, resample: bool = True, limits: ReadLimits = DEFAULT_LIMITS,
                     **metadata) -> dict:
        """Read ``path`` within ``limits`` (:mod:`ecgnet.data.limits`) and diagnose it; a record at another
        rate is resampled (with a note), as ``ecgnet predict`` does, unless ``resample=False``."""
        return self.predict_record(read_ecg_any(path, self.rate, resample=resample, limits=limits), **metadata)
