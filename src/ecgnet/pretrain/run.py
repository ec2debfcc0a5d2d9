"""``ecgnet pretrain``: SimCLR on the signals of folds 1–8, writing ``runs/<name>/``:

```
runs/<name>/
  encoder.safetensors   the model minus its head: frontend statistics + encoder (fine-tune with
                        training.init_from: runs/<name>/encoder.safetensors)
  config.yaml           the pretraining config, as run
  pretrain.json         seed, git revision, folds and records used, loss per epoch, seconds, SHA-256s
```

The three files are written at the end, each atomically (a killed run leaves the previous ones whole).
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader

from ecgnet.config import dump_config
from ecgnet.data.dataset import PTBXL
from ecgnet.errors import ECGNetError
from ecgnet.fileio import write_json, write_text
from ecgnet.models import build_model
from ecgnet.models.unimodal import UnimodalModel
from ecgnet.pretrain.config import PretrainConfig
from ecgnet.pretrain.data import pretraining_split
from ecgnet.pretrain.simclr import SimCLRModule
from ecgnet.pretrain.views import TwoCrops
from ecgnet.pretrain.weights import FILENAME, HEAD, save_encoder
from ecgnet.quiet import quiet_dependencies
from ecgnet.training.progress import progress_callbacks
from ecgnet.training.interrupt import interruptible
from ecgnet.runs import provenance
from ecgnet.training.distributed import hardware
from ecgnet.training.fit import fit_frontends


def pretrain(config: PretrainConfig, data_root: Path, runs_dir: Path = Path("runs"), cache_dir: Path | None = None,
             progress: bool = True) -> Path:
    """Pretrain ``config.model``'s frontend and encoder; returns the path of encoder.safetensors."""
    run_dir, d, t = runs_dir / config.name, config.data, config.training
    origin = provenance()  # at launch: the code that trains
    if t.threads:
        torch.set_num_threads(t.threads)
    L.seed_everything(config.seed, workers=True, verbose=False)

    model = build_model(config.model.name, 1, **config.model.params)  # the head is neither trained nor saved
    if not isinstance(model, UnimodalModel) or model.modalities == ("metadata",):
        raise ECGNetError(f"model.name: {config.model.name} is not a single-branch signal model "
                          "(pretraining is for e.g. time_resnet1d)")
    data = PTBXL(data_root, d.task, d.sampling_rate, cache_dir, d.in_memory)
    split, per_fold = pretraining_split(data, d.max_records, config.seed)  # folds 1–8 only, checked
    if (run_dir / FILENAME).is_file():  # as train says it (a run initialised from it keeps its own copy's hash)
        print(f"note: replacing the finished pretraining {run_dir}", file=sys.stderr)
    fit_frontends(model, split.signal)  # per-lead standardisation from these records; saved with the encoder

    module = SimCLRModule(model, config)
    loader = DataLoader(TwoCrops(split, d.window), batch_size=t.batch_size, shuffle=True,
                        drop_last=len(split.ecg_ids) > t.batch_size, num_workers=t.num_workers)
    quiet_dependencies()  # again now: importing Lightning resets its loggers to INFO
    shown, progress = progress_callbacks(progress)  # a bar on a terminal, one line an epoch in a log
    trainer = L.Trainer(max_epochs=t.epochs, accelerator=t.accelerator, devices=1, precision=t.precision,
                        logger=False, enable_checkpointing=False, default_root_dir=run_dir,
                        callbacks=shown, enable_progress_bar=progress,
                        enable_model_summary=False, deterministic="warn")
    start = time.perf_counter()
    with interruptible(trainer, "pretraining stopped; nothing was saved"):
        trainer.fit(module, loader)
    wall = time.perf_counter() - start

    model.cpu()
    sha = save_encoder(run_dir / FILENAME, model, {"name": config.name, "method": "simclr", "model": config.model.name,
                                                   "params": json.dumps(config.model.params, sort_keys=True)})
    write_text(run_dir / "config.yaml", dump_config(config))
    ids = ",".join(str(int(e)) for e in split.ecg_ids)
    write_json(run_dir / "pretrain.json", {
        "name": config.name, "method": "simclr", "seed": config.seed, "task": d.task,
        "folds": sorted(per_fold), "records": len(split.ecg_ids), "records_per_fold": per_fold,
        "ecg_ids_sha256": hashlib.sha256(ids.encode()).hexdigest(),
        "model": config.model.name,
        "parameters": sum(p.numel() for k, p in model.named_parameters() if not k.startswith(HEAD)),
        "epochs": module.history,
        "loss_of_unrelated_views": round(math.log(2 * min(t.batch_size, len(split.ecg_ids)) - 1), 4),
        "pretraining_seconds": round(sum(e["seconds"] for e in module.history), 1), "wall_seconds": round(wall, 1),
        "hardware": hardware(trainer), "encoder_sha256": sha, "config": config.model_dump(mode="json"), **origin})
    return run_dir / FILENAME
