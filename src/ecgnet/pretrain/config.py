"""A pretraining experiment, as written in ``configs/pretrain_*.yaml``, validated like the training configs
(:mod:`ecgnet.config`): an unknown key or a bad value is one error naming the file and the field.

``model`` is the model that will be fine-tuned (``time_resnet1d`` and its ``params``): pretraining trains its
frontend and encoder, and fine-tuning needs the same architecture (``widths``, ``kernel_size``, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from ecgnet.config import NAME_PATTERN, ModelConfig, _Strict, parse_config, read_with_overrides
from ecgnet.data.augment import NAMES as AUGMENTATIONS
from ecgnet.data.ptbxl import TASKS


class PretrainData(_Strict):
    task: Literal[TASKS] = Field(  # type: ignore[valid-type]
        "all", description="whose training split (folds 1–8) is pretrained on; labels are never used. 'all' "
        "keeps every fold 1–8 record with any SCP statement, i.e. all of them")
    sampling_rate: Literal[100, 500] = 100
    crop_seconds: float = Field(2.5, gt=0, le=10, description="length of each view (a random crop)")
    max_records: int | None = Field(None, gt=0, description="subsample the records (tests)")
    in_memory: bool = Field(False, description="copy the signals into memory (else read from the memory-mapped cache)")

    @property
    def window(self) -> int:
        return max(1, int(self.crop_seconds * self.sampling_rate))


class SimCLRConfig(_Strict):
    temperature: float = Field(0.1, gt=0, description="NT-Xent temperature")
    projection_hidden: int = Field(512, gt=0, description="hidden width of the projection MLP")
    projection_dim: int = Field(128, gt=0, description="output width of the projection MLP (where the loss is)")
    augment: list[Literal[AUGMENTATIONS]] = Field(  # type: ignore[valid-type]
        list(AUGMENTATIONS), description="ecgnet.data.augment augmentations applied to each view")
    augment_p: float = Field(0.5, ge=0, le=1, description="probability of each augmentation per view")
    lead_mask_p: float = Field(0.2, ge=0, lt=1, description="probability that a lead of a view is zeroed")


class PretrainTraining(_Strict):
    epochs: int = Field(20, gt=0)
    batch_size: int = Field(256, gt=1, description="records per step (each gives two views: 2 × batch_size crops)")
    lr: float = Field(3e-3, gt=0, description="peak learning rate of the one-cycle schedule (AdamW)")
    weight_decay: float = Field(1e-2, ge=0)
    warmup_fraction: float = Field(0.1, gt=0, lt=1, description="share of the steps spent warming up")
    precision: Literal["32-true", "bf16-mixed", "16-mixed", "bf16-true"] = "bf16-mixed"
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = "auto"
    threads: int | None = Field(None, gt=0, description="torch CPU threads; None = torch's default")
    num_workers: int = Field(0, ge=0)


class PretrainConfig(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    seed: int = Field(0, ge=0, lt=2**32)
    data: PretrainData = PretrainData()
    model: ModelConfig
    simclr: SimCLRConfig = SimCLRConfig()
    training: PretrainTraining = PretrainTraining()


def load_pretrain_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> PretrainConfig:
    """The file, with ``--set section.key=value`` overrides applied before validation."""
    return parse_config(*read_with_overrides(path, overrides), schema=PretrainConfig, what="pretraining config")
