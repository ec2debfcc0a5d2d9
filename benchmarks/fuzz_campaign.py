"""A long fuzz campaign against ECGNet's readers: WFDB records (``read_ecg``: plain, Challenge ``.mat``
and FLAC-compressed, headers with up to thousands of signal lines), the clinical formats (``read_ecg_any``:
MUSE/Philips/HL7 XML, DICOM, EDF+, SCP-ECG), config parsing (``parse_config``, ``load_config``),
Challenge ``#Dx`` lines (``parse_dx``) and ``find_records``.

The cases and their oracle are those of the test suite (``tests/fuzzing.py``); here they run for many
more examples, and a finding does not stop the campaign: each case that ends in anything but a clean
``ECGNetError`` or a correct read is counted, grouped by exception type and place, and the first case
of each group is kept (as its ``repr``) for reproduction. Hangs are caught by an alarm after
``--timeout`` seconds of CPU time in one case (CPU, not wall time: the machine is shared) and huge
allocations by an address-space limit (``--memory-gb``), so both show up as findings
(``TimeoutError``, ``MemoryError``) instead of stopping the machine.

    nice -n 15 .venv/bin/python -m benchmarks.fuzz_campaign --cases 100000
    nice -n 15 .venv/bin/python -m benchmarks.fuzz_campaign --minutes 10    # as many as fit

Cases are split between the targets by ``--mix`` (records get most: they are the slowest and most
complex reader). Writes ``benchmarks/results/fuzz_campaign.json``.
"""

from __future__ import annotations

import argparse
import collections
import os
import resource
import signal
import tempfile
import time
import traceback
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from benchmarks._common import write_results

TARGETS = ("record", "format", "config", "config_file", "dx", "find_records")

# What the fuzzing found, each fixed with a regression test in tests/test_fuzz_readers.py; written into
# the results so that the campaign's figures say what came before them.
FIXED_BUGS = [
    "read_ecg: a header claiming 10^12 samples reached wfdb (no size check before reading) — now refused "
    "against the signal file's size, with 10 Hz–100 kHz and 1 h bounds (data/wfdb_header.py: check_sizes)",
    "read_ecg: wfdb misreads malformed record lines without a word ('-100' Hz as 250 Hz, '1e2' Hz as 1 Hz, "
    "'1e12' samples as 1) — now refused (data/wfdb_header.py: check_record_line)",
    "read_ecg: a signal line without a description (lead name) raised AttributeError",
    "read_ecg: a signal line whose checksum wfdb could not parse raised TypeError (int(None))",
    "read_ecg: a gain such as 1e-40/mV returned a signal of float32 infinities as a correct read",
    "read_ecg: a baseline beyond 64 bits raised numpy's UFuncTypeError from wfdb's conversion "
    "(found by the first 100 k campaign, seed 0: 2 of 100,000 cases)",
    "load_config: non-UTF-8 files raised UnicodeDecodeError; deeply nested YAML raised RecursionError; "
    "YAML errors spanned several lines",
    "parse_config: infinite numbers were accepted (stride_seconds: .inf → OverflowError later), windows or "
    "strides under one sample (stride 0), seeds Lightning silently replaces by 0 (< 0 or ≥ 2^32), and keys "
    "with line breaks made multi-line messages",
    "parse_dx: Unicode digits ('²', '٣') were accepted as SNOMED CT codes",
    "find_records: a RECORDS cycle ('./') recursed until RecursionError; a line '/' or '../' escaped the "
    "list's folder (a '/' line walked the whole file system)",
    "read_ecg (issue 22): a FLAC record (formats 508/516/524) was decoded to whatever length it declared or "
    "held (50 kB → 1 h at 1 kHz, +1 GB); a header of 50,000 signal lines was parsed by wfdb for minutes "
    "before any check — now bounded by ReadLimits before parsing/decoding (data/wfdb_header.py)",
    "read_ecg_any (DICOM): an element declaring 64 MiB past the end of a 30 kB file made pydicom allocate "
    "the declared length (up to 4 GiB) — now parsed from memory (found by tests/test_fuzz_readers.py)",
    "read_ecg_any (DICOM): a flipped VR byte raised NotImplementedError and a truncated element struct.error "
    "from pydicom when the element was first used (7 of 1,500 format cases, seed 0) — now one ECGNetError",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000, help="total cases (all targets)")
    parser.add_argument("--minutes", type=float, default=None, help="stop after this much wall time")
    parser.add_argument("--mix", default="record=0.45,format=0.25,config=0.075,config_file=0.075,dx=0.075,"
                                         "find_records=0.075")
    parser.add_argument("--timeout", type=float, default=20, help="CPU seconds before a case counts as a hang")
    parser.add_argument("--memory-gb", type=float, default=4, help="address-space limit of this process")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()

    import hypothesis

    from tests import fuzzing

    fuzzing.bases()  # written (and the readers imported) before the memory limit
    fuzzing.format_bases()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (int(args.memory_gb * 2**30), hard))
    mix = {k: float(v) for k, v in (part.split("=") for part in args.mix.split(","))}
    deadline = time.monotonic() + args.minutes * 60 if args.minutes else None
    cpu0, start = time.process_time(), time.monotonic()
    report = {}
    for target in TARGETS:
        n = round(args.cases * mix.get(target, 0))
        share = None if deadline is None else (deadline - time.monotonic()) * mix.get(target, 0) / max(
            1e-9, sum(mix.get(t, 0) for t in TARGETS[TARGETS.index(target):]))
        if n:
            report[target] = run_target(target, n, share, args.timeout, args.seed, hypothesis, fuzzing)
            r = report[target]
            print(f"{target:13s} {r['cases']:7d} cases  {r['outcomes']}  findings: {r['finding_cases']} "
                  f"({len(r['findings'])} distinct)  {r['seconds']:.0f} s", flush=True)
    total = sum(r["cases"] for r in report.values())
    findings = sum(r["finding_cases"] for r in report.values())
    print(f"total: {total} cases, {findings} findings, {time.monotonic() - start:.0f} s wall, "
          f"{time.process_time() - cpu0:.0f} s CPU")
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))  # writing the results imports torch
    write_results("fuzz_campaign", {
        "cases": total, "finding_cases": findings, "cpu_seconds": round(time.process_time() - cpu0, 1),
        "wall_seconds": round(time.monotonic() - start, 1), "hypothesis": hypothesis.__version__,
        "targets": report, "fixed_before_this_run": FIXED_BUGS}, vars(args), args.output)


def run_target(target, n, seconds, timeout, seed, hypothesis, fuzzing) -> dict:
    from hypothesis import HealthCheck, Phase, given, seed as hseed, settings

    strategy, check = {
        "record": (fuzzing.record_cases(), lambda case, d: fuzzing.check_record(case, d)),
        "format": (fuzzing.format_cases(), lambda case, d: fuzzing.check_format(case, d)),
        "config": (fuzzing.config_values(), lambda raw, d: fuzzing.check_config(raw)),
        "config_file": (fuzzing.YAML_TEXT, lambda data, d: fuzzing.check_config_file(data, d)),
        "dx": (fuzzing.dx_headers(), lambda text, d: fuzzing.check_dx(text)),
        "find_records": (fuzzing.record_trees(), lambda tree, d: fuzzing.check_find_records(tree, d)),
    }[target]
    outcomes, findings = collections.Counter(), {}
    stop_at = None if seconds is None else time.monotonic() + seconds
    start = time.monotonic()

    def on_alarm(signum, frame):
        raise TimeoutError(f"case ran longer than {timeout} s")

    signal.signal(signal.SIGPROF, on_alarm)

    @hseed(seed)
    @settings(max_examples=n, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(case):
        if stop_at is not None and time.monotonic() > stop_at:
            outcomes["skipped (time)"] += 1
            return
        with tempfile.TemporaryDirectory() as tmp:
            signal.setitimer(signal.ITIMER_PROF, timeout, 1)  # and every CPU second after, if one is swallowed
            try:
                outcomes[check(case, Path(tmp))] += 1
            except Exception as e:  # MemoryError, TimeoutError, AssertionError: all findings
                outcomes["finding"] += 1
                frame = traceback.extract_tb(e.__traceback__)[-1]
                key = f"{type(e).__name__} at {Path(frame.filename).name}:{frame.lineno}"
                found = findings.setdefault(key, {"count": 0, "message": " ".join(str(e).split())[:300],
                                                  "first_case": repr(case)[:2000]})
                found["count"] += 1
            finally:
                signal.setitimer(signal.ITIMER_PROF, 0)

    run()
    cases = sum(v for k, v in outcomes.items() if k != "skipped (time)")
    return {"cases": cases, "outcomes": dict(outcomes), "finding_cases": outcomes["finding"],
            "findings": findings, "seconds": round(time.monotonic() - start, 1)}


if __name__ == "__main__":
    main()
