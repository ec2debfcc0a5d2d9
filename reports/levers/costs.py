"""What each run of the levers table costs at inference: parameters, multiply–accumulates per 10 s ECG and
the median 1-thread CPU latency of a whole record (ecgnet.evaluation.complexity), written to costs.json,
which table.py reads. An ensemble costs the sum of its members (they run one after another); its stack
of logistic regressions, if any, is negligible.

    ECGNET_DATA=... .venv/bin/python -m reports.levers.costs   # writes reports/levers/costs.json

Latency is noisy on a shared machine (a training run shared the 2 cores): the runs are measured in one process,
one after another, and the same architecture has measured 3.5–8 ms; read differences under ~2× as noise.
"""

from pathlib import Path

import torch

from ecgnet.config import load_config
from ecgnet.evaluation.complexity import model_cost
from ecgnet.fileio import write_json
from ecgnet.runs import load_run, provenance

from reports import usage
from reports.levers.table import ALL_TASK, LEVERS

OUT = Path(__file__).with_name("costs.json")


def single_cost(run: str) -> dict:
    c = model_cost(*load_run(f"runs/{run}")[:2], latency_repeats=10)
    return {"parameters": c["parameters"], "macs_per_ecg": c["macs_per_ecg"], "latency_ms": round(c["latency_ms"], 1)}


def cost(run: str, done: dict) -> dict:
    if run not in done:
        config = load_config(f"runs/{run}/config.yaml")
        if config.model.name == "late_fusion":  # the sum of its members
            members = [Path(p).name for p in config.model.params["members"].values()]
            parts = [cost(m, done) for m in members]
            done[run] = {k: sum(p[k] for p in parts) for k in ("parameters", "macs_per_ecg", "latency_ms")}
            done[run]["latency_ms"] = round(done[run]["latency_ms"], 1)
            done[run]["members"] = members
        else:
            done[run] = single_cost(run)
        print(run, done[run], flush=True)
    return done[run]


def main() -> None:
    torch.manual_seed(0)
    done: dict = {}
    for _, run, base in LEVERS + ALL_TASK:
        for r in (run, base):
            if Path(f"runs/{r}/run.json").is_file():
                cost(r, done)
    write_json(OUT, {"made_by": "reports/levers/costs.py", "revision": provenance()["git_revision"],
                     "latency": "median of 10 whole-record predictions, 1 CPU thread, 2-core shared machine",
                     "runs": dict(sorted(done.items()))})


if __name__ == "__main__":
    usage.arguments(__doc__)
    main()
