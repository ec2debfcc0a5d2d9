"""``ecgnet data download|verify|info`` (the PTB-XL folder), ``ecgnet data cache`` (the signal caches) and
``ecgnet manifest`` (a labelled collection as a manifest CSV)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from ecgnet.errors import ECGNetError
from ecgnet.cli.common import (
    DataOpt, ProgressOpt,
    app, console, data_app, err, friendly,
)


@data_app.command("download")
@friendly
def data_download(dest: Path = typer.Argument(..., help="Folder to download into (created)."),
                  url: str = typer.Option(None, help="Release URL (default: PhysioNet PTB-XL 1.0.1)."),
                  with_500hz: bool = typer.Option(False, "--with-500hz", help="Also the 500 Hz records (~1.7 GB)."),
                  workers: int = typer.Option(4, help="Parallel downloads."), progress: bool = ProgressOpt):
    """Download PTB-XL, verify every checksum, resume after interruption."""
    from ecgnet.data.download import DEFAULT_URL, download

    report = download(dest, url or DEFAULT_URL, include_500hz=with_500hz, workers=workers, progress=progress)
    console.print(report.summary())
    console.print(f"Use it with: [bold]export ECGNET_DATA={dest.resolve()}[/]")


@data_app.command("verify")
@friendly
def data_verify(folder: Optional[Path] = typer.Argument(None, help="A PTB-XL folder with SHA256SUMS.txt "
                                                      "(default: $ECGNET_DATA)."),
                with_500hz: bool = typer.Option(False, "--with-500hz", help="Also check records500/."),
                cache: bool = typer.Option(False, "--cache", help="Check every byte of the signal caches in "
                                           "$ECGNET_CACHE against their index's SHA-256."),
                progress: bool = ProgressOpt):
    """Check a folder against its SHA256SUMS.txt (missing, extra and corrupt files), and/or the signal cache."""
    from ecgnet.data.download import verify
    from ecgnet.data.signals import verify_caches

    if folder is None and not cache:  # the folder every other command reads
        if not os.environ.get("ECGNET_DATA"):
            raise ECGNetError("data verify: name a PTB-XL folder (or set ECGNET_DATA), or pass --cache to check "
                              "the signal cache")
        folder = Path(os.environ["ECGNET_DATA"])
    reports = ([verify(folder, include_500hz=with_500hz, progress=progress)] if folder else []) + \
        ([verify_caches(progress=progress)] if cache else [])
    for report in reports:
        console.print(escape(report.summary()))
    if not all(r.ok for r in reports):
        raise typer.Exit(1)


@data_app.command("cache")
@friendly
def data_cache(remove: Optional[list[str]] = typer.Option(None, "--remove", metavar="KEY", help="Remove this cache "
                                                          "(its name as listed, or a unique start of it; repeatable)."),
               clear: bool = typer.Option(False, "--clear", help="Remove every signal cache.")):
    """List the signal caches — copies of the records' signals (and, for a manifest, their paths, age and sex) that
    training and evaluation keep in $ECGNET_CACHE — or remove them. A removed cache is rebuilt when next needed."""
    from ecgnet.data.cache_files import human, list_caches, remove_caches, select
    from ecgnet.data.signals import cache_dir

    entries = list_caches()
    where = cache_dir()
    if clear or remove:
        chosen = entries if clear else select(entries, remove)
        freed = remove_caches(chosen, waiting=lambda key: err.print(
            f"waiting for another ecgnet process using {key} (building or reading it)…", highlight=False))
        console.print(f"removed {len(chosen)} cache(s) from {escape(str(where))}, {human(freed)} freed",
                      highlight=False)
        return
    if not entries:
        console.print(f"no signal cache in {escape(str(where))} (ECGNET_CACHE sets the folder)", highlight=False)
        return
    console.print(f"{len(entries)} signal cache(s) in {escape(str(where))} (ECGNET_CACHE sets the folder), "
                  f"{human(sum(e.size for e in entries))}:", highlight=False)
    width = max(len(e.key) for e in entries)
    for e in entries:
        records = "?" if e.records is None else str(e.records)
        console.print(f"  {e.key:<{width}}  {records:>6} records  {human(e.size):>9}  {e.modified:%Y-%m-%d %H:%M}  "
                      f"{escape(e.built_from)}", highlight=False, soft_wrap=True)
    console.print("remove one with `ecgnet data cache --remove KEY`, all with --clear", highlight=False)


@data_app.command("info")
@friendly
def data_info(data: Optional[Path] = DataOpt):
    """Records and class counts per task and split, under the benchmark's label rules."""
    from rich.table import Table

    from ecgnet.data import ptbxl

    root = ptbxl.data_root(data)
    db, statements = ptbxl.read_database(root), ptbxl.read_statements(root)
    table = Table("task", "classes", "records", "train (1–8)", "val (9)", "test (10)", title=str(root))
    for task in ptbxl.TASKS:
        labels = ptbxl.make_labels(db, statements, task)
        table.add_row(task, str(len(labels.classes)), str(len(labels.ecg_ids)),
                      *(str(int(labels.split(s).sum())) for s in ("train", "val", "test")))
    console.print(table)


@app.command()
@friendly
def manifest(source: Path = typer.Argument(..., help="A Challenge-style folder (WFDB headers with #Dx SNOMED CT "
                                           "codes, searched recursively) or a PTB-XL folder."),
             out: Path = typer.Option(..., "--out", "-o", help="The manifest CSV to write "
                                      "(record paths relative to it)."),
             task: Optional[str] = typer.Option(None, help="PTB-XL only: the task whose labels to write "
                                                "(default superdiagnostic)."),
             sampling_rate: Optional[int] = typer.Option(None, "--sampling-rate", help="PTB-XL only: 100 "
                                                         "(default) or 500 Hz records."),
             labels: Optional[str] = typer.Option(None, "--labels", help="Challenge folders: 'superclasses' (one "
                                        "column per PTB-XL superclass, mapped from the SNOMED CT codes) or 'snomed' "
                                        "(a labels column of each record's codes, for --label-map to turn into "
                                        "your own classes; default superclasses)."),
             label_map: Optional[Path] = typer.Option(None, "--label-map", help="Check the written manifest with "
                                                  "this label map (YAML or CSV)."),
             force: bool = typer.Option(False, "--force", help="Replace a file at --out that differs from the "
                                        "manifest written now (without it, an edited manifest is kept).")):
    """Write a manifest (one CSV row per labelled record) from a Challenge-style folder or PTB-XL.

    Edit it, or write your own: see `ecgnet docs own_data`. Train on it with
    `ecgnet train --manifest M.csv`.
    """
    from ecgnet.data.collections.make import make_manifest

    result, collection = make_manifest(source, out, task, sampling_rate, labels, label_map, force)
    if "codes" in result and label_map is None:  # SNOMED CT codes: what a label map would map
        _print_codes(result, out)
    else:
        console.print(f"{result['records']} records, classes {escape(', '.join(collection.classes))} → "
                      f"[bold]{escape(str(out))}[/]")
        console.print(collection.counts().to_string(), highlight=False)
    for b in result.get("blanked", []):
        console.print(f"{escape(b['record'])}: {b['column']} {b['value']:g} is implausible, written empty (unknown)",
                      highlight=False)
    if result["left_out"]:
        example = os.path.relpath(Path(out).parent / result["left_out"][0]["record"])  # the CSV's path, from here
        console.print(f"{len(result['left_out'])} records left out ({escape(result['left_out'][0]['why'])}), e.g. "
                      f"{escape(example)}", highlight=False, soft_wrap=True)


def _print_codes(result: dict, out: Path, shown: int = 15) -> None:
    from ecgnet.data.collections.manifest_checks import plural

    codes = result["codes"]
    console.print(f"{plural(result['records'], 'record')}, {plural(len(codes), 'SNOMED CT code')} → "
                  f"[bold]{escape(str(out))}[/]")
    for e in codes[:shown]:
        name = f"{e['name']} ({e['abbreviation']})" if e["name"] else ""
        console.print(f"  {e['code']:<10} {e['records']:>6}  {escape(name)}", highlight=False)
    if len(codes) > shown:
        console.print(f"  … and {plural(len(codes) - shown, 'more code')}", highlight=False)
    console.print("Map the codes to your classes with a label map (`ecgnet docs own_data`), e.g. a YAML file of lines "
                  "'164889003: AF' and '\"*\": null' (every other code ignored); check it with --label-map, "
                  "train with --manifest and --label-map.", highlight=False)
