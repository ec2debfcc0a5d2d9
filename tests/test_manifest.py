"""Manifests: every bad-input case is one error naming the line and column; --skip-bad lists and skips;
label maps (YAML, CSV); the signal cache (parallel = serial, checksummed); the writers (Challenge, PTB-XL)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecgnet.data.collections import read_manifest
from ecgnet.data.collections.manifest import read_label_map
from ecgnet.data.collections.folds import inner_split, source_folds, stratified_group_folds
from ecgnet.errors import ECGNetError
from conftest import write_wfdb

CINC = Path(__file__).resolve().parents[2] / "shared" / "external" / "cinc2021-samples"


@pytest.fixture
def folder(tmp_path) -> Path:
    for i in range(4):
        write_wfdb(tmp_path / "recs", f"r{i}", fs=500, seed=i)
    return tmp_path


def manifest(folder: Path, text: str, name: str = "m.csv") -> Path:
    path = folder / name
    path.write_text(text)
    return path


GOOD = ("record,patient,source,age,sex,A,B\n"
        "recs/r0.hea,p0,s1,63,female,1,0\n"
        "recs/r1,p1,s1,,M,0,\n"
        "recs/r2.hea,p2,s2,300,male,0,1\n")


def test_good_manifest_columns(folder):
    c = read_manifest(manifest(folder, GOOD))
    assert c.classes == ["A", "B"] and len(c) == 3
    np.testing.assert_array_equal(c.y[1], [0, np.nan])  # empty = unknown
    assert c.has_unknown and list(c.sources) == ["s1", "s1", "s2"] and list(c.patients) == ["p0", "p1", "p2"]
    assert c.metadata["age"].tolist()[0] == 63 and c.metadata["age"].tolist()[2] == 90  # PTB-XL's 300 → 90
    assert c.metadata["sex"].tolist() == [1.0, 0.0, 0.0] and c.metadata["age_missing"].tolist() == [0, 1, 0]
    assert c.folds is None


def test_a_manifest_s_patient_fields_train_as_prediction_encodes_them(folder):
    """The metadata encoding was written three times: a manifest row aged 95 trained as 95 while predict and
    evaluate --manifest fed the model 90 (and a height of 0 was 0 to one, unknown to the other)."""
    from ecgnet.data.ptbxl import MetadataScaler
    from ecgnet.inference.predictor import Predictor

    c = read_manifest(manifest(folder, "record,age,sex,height,weight,A\nrecs/r0.hea,95,F,170,80,1\n"
                                       "recs/r1.hea,89.5,M,,,0\nrecs/r2.hea,40,,182,,1\n"))
    assert c.metadata["age"].tolist() == [90, 90, 40]
    predictor = Predictor("intermediate_concat_weighted_bce")  # a shipped model with patient metadata
    scaler = MetadataScaler(*(np.asarray(predictor.info["metadata_scaler"][k]) for k in ("mean", "std")))
    trained = scaler.transform(c.metadata)
    predicted = [predictor.metadata_vector(age=95, sex="female", height=170, weight=80),
                 predictor.metadata_vector(age=89.5, sex="male"), predictor.metadata_vector(age=40, height=182)]
    np.testing.assert_allclose(trained, np.stack(predicted), atol=1e-6)
    np.testing.assert_allclose(predictor.metadata_vector(height=0), predictor.metadata_vector(), atol=0)


def test_labels_column_and_defaults(folder):
    c = read_manifest(manifest(folder, "record,labels\nrecs/r0.hea,MI;STTC\nrecs/r1.hea,NORM\n"))
    assert c.classes == ["MI", "NORM", "STTC"]
    np.testing.assert_array_equal(c.y, [[1, 0, 1], [0, 1, 0]])
    assert list(c.patients) == ["recs/r0.hea", "recs/r1.hea"] and set(c.sources) == {"manifest"}


@pytest.mark.parametrize("text, expected", [
    ("record,A\nrecs/nope.hea,1\n", "line 2 \\(record 'recs/nope.hea'\\), column record: .*no such file"),
    ("record,A\nrecs\\r0.hea,1\n", "column record: no such file in .* \\(a Windows path\\? separate folders with '/'\\)"),
    ("record,A\nrecs/r0.hea,1\nrecs/r0.hea,0\n", "line 3 .*duplicate record \\(also on line 2\\)"),
    ("record,A\nrecs/r0,1\nrecs/r0.dat,0\n", "line 3 .*duplicate record \\(also on line 2\\)"),
    ("record,A,B\nrecs/r0.hea,,\n", "line 2 .*no label"),
    ("record,labels\nrecs/r0.hea,\n", "line 2 .*column labels: empty"),
    ("record,A\nrecs/r0.hea,maybe\n", "line 2 .*column A: 'maybe' is not 1 \\(positive\\), 0 \\(negative\\) or empty"),
    ("record,age,A\nrecs/r0.hea,sixty,1\n", "line 2 .*column age: 'sixty' is not a number"),
    ("record,age,A\nrecs/r0.hea,-4,1\n", "line 2 .*column age: -4 is outside"),
    ("record,sex,A\nrecs/r0.hea,X,1\n", "line 2 .*column sex: 'X'"),
    ("record,sex,A\nrecs/r0.hea,1,1\n", "line 2 .*column sex: '1' is a number, which sites write either way"),
    ("record,sex,A\nrecs/r0.hea,1,1\nrecs/r1.hea,0,1\nrecs/r2.hea,1,0\n",  # once for the column, not per row
     r"1 problem\(s\) .*\ncolumn sex: 3 rows hold numbers \('0', '1'; lines 2, 3, 4\), which sites write either "
     r"way \(PTB-XL: 0 male, 1 female; others: 1 male, 2 female\): write male/female or M/F$"),
    ("record,labels\nrecs/r0.hea,NA\n", "line 2 .*column labels: 'NA' \\(a missing value, not a label\\)"),
    ("record,A\nrecs/r0.hea,x\nrecs/r1.hea,\nrecs/r2.hea,x\n", "line 2, column A: 'x' is not a label value: .*an "
                                                                   "empty cell is unknown, not negative"),
    ("record,fold,A\nrecs/r0.hea,1.5,1\n", "line 2 .*column fold: '1.5' is not an integer"),
    ("record,A\nrecs/r0.hea,1,1\n", "line 2 .*3 fields, the header has 2"),
    ("patient,A\np,1\n", "line 1: no 'record' column"),
    ("record,patient\nrecs/r0.hea,p\n", "no labels"),
    ("record,labels,A\nrecs/r0.hea,A,1\n", "both a 'labels' column and per-class columns"),
    ("record,A,A\nrecs/r0.hea,1,1\n", "column\\(s\\) A appear more than once"),
    ("", "empty manifest"),
    ("record;labels\nrecs/r0.hea;A\n", "no 'record' column .*the header is ';'-separated .*save the manifest comma"),
    ("record\tA\nrecs/r0.hea\t1\n", "no 'record' column .*the header is tab-separated"),
    ("record,labels\nrecs/r0.hea,NORM\nrecs/r1.hea,norm\n", "classes 'NORM' and 'norm' differ only in case"),
    ("record,Mi,MI\nrecs/r0.hea,1,1\n", "classes 'Mi' and 'MI' differ only in case"),
])
def test_each_bad_input_is_one_error_naming_line_and_column(folder, text, expected):
    with pytest.raises(ECGNetError, match=expected):
        read_manifest(manifest(folder, text))


@pytest.mark.parametrize("cell, parts", [('"NORM,MI"', 2), ("CD|MI", 2), ('"NORM, MI|CD"', 3), ("NORM MI", 2)])
def test_a_label_written_with_a_wrong_separator_is_named_not_made_a_class(folder, cell, parts):
    """'NORM,MI' (a quoted cell), 'CD|MI', or 'NORM MI' where both are labels on their own: a problem naming
    the line, the column and the label, never a class named 'NORM,MI'."""
    text = f"record,labels\nrecs/r0.hea,NORM\nrecs/r1.hea,MI\nrecs/r2.hea,CD\nrecs/r3.hea,{cell}\n"
    label = cell.strip('"')
    with pytest.raises(ECGNetError, match=f"line 5 \\(record 'recs/r3.hea'\\), column labels: '{re.escape(label)}' "
                                          f"looks like {parts} labels: separate labels with ';'"):
        read_manifest(manifest(folder, text))
    c = read_manifest(manifest(folder, text), skip_bad=True)
    assert c.classes == ["CD", "MI", "NORM"] and len(c) == 3 and "line 5" in c.skipped[0][0]


def test_labels_with_spaces_or_a_stray_comma(folder):
    """A class name with spaces is one class unless its words are each a label; a stray ',' is a problem."""
    c = read_manifest(manifest(folder, "record,labels\nrecs/r0.hea,atrial fibrillation\nrecs/r1.hea,NORM\n"))
    assert c.classes == ["NORM", "atrial fibrillation"]
    with pytest.raises(ECGNetError, match="line 3 .*column labels: 'NORM,' holds a ',' or '|': separate labels"):
        read_manifest(manifest(folder, 'record,labels\nrecs/r0.hea,MI\nrecs/r1.hea,"NORM,"\n'))
    with pytest.raises(ECGNetError, match="line 2 .*3 fields, the header has 2 \\(a ',' in the labels cell\\? "
                                          "separate labels with ';'\\)"):
        read_manifest(manifest(folder, "record,labels\nrecs/r0.hea,NORM,MI\n"))


def test_label_map_keys_may_hold_commas_its_classes_may_not(folder):
    """Free text with a comma is a fine code to map; a class (a map's target, a class column) with ',' or '|'
    is refused; a code the map does not list that joins codes it lists is named, even under '*': null."""
    (folder / "map.yaml").write_text("'ST elevation, anterior': MI\nnormal: NORM\n")
    c = read_manifest(manifest(folder, 'record,labels\nrecs/r0.hea,"ST elevation, anterior;normal"\n'),
                      label_map=folder / "map.yaml")
    assert c.classes == ["MI", "NORM"] and c.y.tolist() == [[1, 1]]
    (folder / "bad.yaml").write_text("st: STTC, MI\n")
    with pytest.raises(ECGNetError, match="bad.yaml: 'st': 'STTC, MI' looks like 2 classes: map the code to a list"):
        read_manifest(manifest(folder, "record,labels\nrecs/r0.hea,st\n"), label_map=folder / "bad.yaml")
    (folder / "bad.csv").write_text('code,class\nst,"STTC|MI"\n')
    with pytest.raises(ECGNetError, match="bad.csv line 2, column class: 'st': 'STTC\\|MI' looks like 2 classes"):
        read_manifest(manifest(folder, "record,labels\nrecs/r0.hea,st\n"), label_map=folder / "bad.csv")
    (folder / "wild.yaml").write_text("mi_ant: MI\nnormal: NORM\n'*': null\n")
    path = manifest(folder, 'record,labels\nrecs/r0.hea,"mi_ant,normal"\nrecs/r1.hea,"other, text"\n')
    with pytest.raises(ECGNetError, match="line 2 .*column labels: 'mi_ant,normal' looks like 2 labels: separate "
                                          "labels with ';' \\(or list 'mi_ant,normal' in the label map\\)") as e:
        read_manifest(path, label_map=folder / "wild.yaml")
    assert "1 problem(s)" in str(e.value)  # 'other, text' is no code the map lists: '*' ignores it
    with pytest.raises(ECGNetError, match="line 1, column NORM\\|MI: 'NORM\\|MI' looks like 2 classes: one column "
                                          "per class"):
        read_manifest(manifest(folder, "record,NORM|MI\nrecs/r0.hea,1\n"))


def test_the_skip_bad_hint_only_where_the_caller_has_the_option(folder):
    """read_manifest(..., skip_bad=False) comes from a command with --skip-bad (train, evaluate, calibrate):
    the error offers it; without skip_bad (ecgnet manifest, distillation's unlabelled set) it does not."""
    path = manifest(folder, "record,A\nrecs/nope.hea,1\n")
    with pytest.raises(ECGNetError, match="1 problem\\(s\\) \\(fix them, or pass --skip-bad to leave those rows out\\)"):
        read_manifest(path, skip_bad=False)
    with pytest.raises(ECGNetError, match="1 problem\\(s\\) \\(fix them\\):") as e:
        read_manifest(path)
    assert "--skip-bad" not in str(e.value)


def test_many_unmapped_codes_suggest_the_wildcard(folder):
    (folder / "map.yaml").write_text("mi_ant: MI\n")
    rows = "".join(f"recs/r{i}.hea,mi_ant;{code}\n" for i, code in enumerate(["lvh", "pvc", "lvh"]))
    with pytest.raises(ECGNetError, match="(?s)3 problem\\(s\\).*3 of them are codes the label map does not list "
                                          "\\(2 codes: lvh \\(2 rows\\), pvc \\(1 row\\)\\): add them to the map, or "
                                          "add '\"\\*\": null' .* to ignore every code it does not list"):
        read_manifest(manifest(folder, "record,labels\n" + rows), label_map=folder / "map.yaml")
    with pytest.raises(ECGNetError) as e:  # a few unmapped codes among other problems: no wildcard advice
        read_manifest(manifest(folder, "record,labels,age\nrecs/r0.hea,lvh,x\nrecs/r1.hea,mi_ant,y\n"
                               "recs/r2.hea,mi_ant,z\n", "n.csv"), label_map=folder / "map.yaml")
    assert "4 problem(s)" in str(e.value) and '"*"' not in str(e.value)


def test_manifest_command_with_a_label_map_missing_codes_suggests_the_wildcard_not_skip_bad(tmp_path):
    """`ecgnet manifest FOLDER --labels snomed --label-map map.yaml`: the command has no --skip-bad."""
    from typer.testing import CliRunner

    from ecgnet.cli import app

    for i, codes in enumerate(["426783006", "164889003,426783006", "59118001"]):
        header, _ = write_wfdb(tmp_path / "recs", f"r{i}", fs=500, seed=i)
        header.write_text(header.read_text() + f"#Dx: {codes}\n")
    (tmp_path / "af.yaml").write_text("164889003: AF\n")
    out = tmp_path / "m.csv"
    result = CliRunner().invoke(app, ["manifest", str(tmp_path / "recs"), "-o", str(out), "--labels", "snomed",
                                      "--label-map", str(tmp_path / "af.yaml")])
    assert result.exit_code != 0 and out.exists()  # the manifest is whole: the map is what to fix
    text = " ".join(result.output.split())
    assert "--skip-bad" not in text and "unknown code '426783006'" in text, text
    assert "3 of them are codes the label map does not list" in text and '"*": null' in text, text


def test_a_misnamed_labels_column_is_one_error_naming_it(folder):
    """'diagnosis' holding 'NORM;MI': one error naming the column, not one per row."""
    text = "record,diagnosis\nrecs/r0.hea,NORM;MI\nrecs/r1.hea,CD\nrecs/r2.hea,NORM\n"
    with pytest.raises(ECGNetError, match="line 1, column\\(s\\) diagnosis: text \\(e.g. 'NORM;MI' on line 2\\), not "
                                          "1/0: a column of labels must be named 'labels'") as e:
        read_manifest(manifest(folder, text))
    assert "is not 1, 0" not in str(e.value) and "line 3" not in str(e.value)
    with pytest.raises(ECGNetError, match="line 3 .*column A: 'x' is not"):  # mostly 1/0: the row's own error
        read_manifest(manifest(folder, "record,A\nrecs/r0.hea,1\nrecs/r1.hea,x\nrecs/r2.hea,0\n", "n.csv"))


def test_the_per_class_error_lists_every_accepted_value(folder):
    from ecgnet.data.collections.manifest_checks import FALSE as _FALSE, TRUE as _TRUE

    with pytest.raises(ECGNetError, match="column A: 'maybe' is not 1 \\(positive\\), 0 \\(negative\\) or empty") as e:
        read_manifest(manifest(folder, "record,A\nrecs/r0.hea,maybe\n"))
    said = str(e.value).split("'maybe' is not", 1)[1]
    words = set(re.findall(r"[\w.]+", said))
    assert _TRUE | _FALSE <= words, (_TRUE | _FALSE) - words
    assert "any case" in said
    c = read_manifest(manifest(folder, "record,A,B\nrecs/r0.hea,YES,f\nrecs/r1.hea,True,N\n", "n.csv"))
    assert c.y.tolist() == [[1, 0], [1, 0]]  # what is accepted is unchanged


@pytest.mark.parametrize("encoding, expected", [
    ("utf-16", "m.csv: UTF-16 text, not UTF-8: save it as UTF-8 \\(CSV UTF-8 in Excel\\)"),
    ("cp1252", "m.csv: not UTF-8 text \\([a-z ]+ at byte \\d+\\): save it as UTF-8 "
               "\\(CSV UTF-8 in Excel\\)"),
])
def test_a_manifest_that_is_not_utf8_says_what_to_do(folder, encoding, expected):
    path = folder / "m.csv"
    path.write_text("record,labels\nrecs/r0.hea,Müller é\n", encoding=encoding)
    with pytest.raises(ECGNetError, match=expected):
        read_manifest(path)
    (folder / "map.csv").write_text("code,class\né,A\n", encoding=encoding)
    with pytest.raises(ECGNetError, match="map.csv: .*save it as UTF-8"):
        read_manifest(manifest(folder, "record,labels\nrecs/r0.hea,A\n", "u.csv"), label_map=folder / "map.csv")


def test_unknown_class_with_label_map(folder):
    (folder / "map.yaml").write_text("mi_ant: MI\nmi_inf: MI\nnormal: NORM\nsinus: null\n")
    path = manifest(folder, "record,labels\nrecs/r0.hea,mi_ant;sinus\nrecs/r1.hea,normal\nrecs/r2.hea,lvh\n")
    with pytest.raises(ECGNetError, match="line 4 .*column labels: unknown code 'lvh' \\(not in the label map\\)"):
        read_manifest(path, label_map=folder / "map.yaml")
    c = read_manifest(path, label_map=folder / "map.yaml", skip_bad=True)
    assert c.classes == ["MI", "NORM"] and len(c) == 2
    np.testing.assert_array_equal(c.y, [[1, 0], [0, 1]])
    assert c.skipped and "line 4" in c.skipped[0][0] and "lvh" in c.skipped[0][1]


def test_a_label_maps_wildcard_maps_every_code_it_does_not_list(folder):
    """'*' stands for the codes the map does not list: null ignores them, a class collects them; a code the
    map lists keeps its own entry, and per-class columns follow the same rule."""
    path = manifest(folder, "record,labels\nrecs/r0.hea,mi_ant;sinus\nrecs/r1.hea,normal\nrecs/r2.hea,lvh;pvc\n")
    (folder / "ignore.yaml").write_text("mi_ant: MI\nnormal: NORM\n'*': null\n")
    c = read_manifest(path, label_map=folder / "ignore.yaml")
    assert c.classes == ["MI", "NORM"] and len(c) == 3
    np.testing.assert_array_equal(c.y, [[1, 0], [0, 1], [0, 0]])
    (folder / "other.csv").write_text("code,class\nmi_ant,MI\nnormal,NORM\n*,OTHER\n")
    c = read_manifest(path, label_map=folder / "other.csv")
    assert c.classes == ["MI", "NORM", "OTHER"]
    np.testing.assert_array_equal(c.y, [[1, 0, 1], [0, 1, 0], [0, 0, 1]])
    columns = read_manifest(manifest(folder, "record,ant,NORM,lvh\nrecs/r0.hea,1,0,0\nrecs/r1.hea,0,1,1\n", "c.csv"),
                            label_map={"ant": ["MI"], "*": ["OTHER"]})
    assert columns.classes == ["MI", "OTHER"]  # NORM is not a class of this map: collected by '*'
    np.testing.assert_array_equal(columns.y, [[1, 0], [0, 1]])
    # a map of codes with '*': null on per-class columns gave one 'no label' error per row (92 of them, found in a
    # user-workflow audit): one line 1 error says the map maps none of the columns
    with pytest.raises(ECGNetError, match=r"c.csv line 1: the label map maps none of the class columns \(ant, "
                                          r"NORM, lvh\) to one of its classes \(AF\); a map of codes reads a "
                                          r"`labels` column"):
        read_manifest(folder / "c.csv", label_map={"164889003": ["AF"], "*": []})


@pytest.mark.skipif(not CINC.is_dir(), reason="needs ../shared/external/cinc2021-samples")
def test_challenge_manifest_of_snomed_codes_feeds_a_label_map(tmp_path):
    """`ecgnet manifest --labels snomed`: each record's #Dx codes in a labels column (all 122 records have
    one), counted with their names; a label map with '*': null turns them into the user's classes (AF
    positives = the records whose header lists 164889003); without the wildcard an unmapped code is named."""
    from typer.testing import CliRunner

    from ecgnet.cli import app
    from ecgnet.data.external import parse_dx

    out = tmp_path / "codes.csv"
    result = CliRunner().invoke(app, ["manifest", str(CINC), "-o", str(out), "--labels", "snomed"])
    assert result.exit_code == 0, result.output
    assert "122 records, 52 SNOMED CT codes" in result.stdout and "atrial fibrillation (AF)" in result.stdout
    headers = sorted(CINC.rglob("*.hea"))
    with_af = sum("164889003" in parse_dx(h.read_text()) for h in headers)
    (tmp_path / "af.yaml").write_text("164889003: AF\n'*': null\n")
    c = read_manifest(out, label_map=tmp_path / "af.yaml")
    assert len(c) == len(headers) == 122 and c.classes == ["AF"] and int(c.y.sum()) == with_af == 9
    (tmp_path / "strict.yaml").write_text("164889003: AF\n")
    with pytest.raises(ECGNetError, match="unknown code '\\d+' \\(not in the label map\\)"):
        read_manifest(out, label_map=tmp_path / "strict.yaml")
    supers = CliRunner().invoke(app, ["manifest", str(CINC), "-o", str(tmp_path / "sub" / "s.csv")])
    example = next(line for line in supers.stdout.splitlines() if "records left out" in line)  # one line, and a
    assert Path(example.split("e.g. ")[1]).is_file()  # path from here, not from the CSV (found in a wheel audit)
    bad = CliRunner().invoke(app, ["manifest", str(CINC), "-o", str(tmp_path / "x.csv"), "--labels", "scp"])
    assert bad.exit_code == 2 and "--labels must be one of superclasses, snomed" in bad.stderr
    assert not (tmp_path / "x.csv").exists()


def test_csv_label_map_renames_columns(folder):
    (folder / "map.csv").write_text("code,class\nant,MI\ninf,MI\nnormal,NORM\n")
    c = read_manifest(manifest(folder, "record,ant,inf,normal\nrecs/r0.hea,0,1,0\nrecs/r1.hea,0,,1\n"
                                       "recs/r2.hea,1,0,0\nrecs/r3.hea,1,,0\n"), label_map=folder / "map.csv")
    assert c.classes == ["MI", "NORM"]
    # two site columns onto one class: positive if either is, whichever column comes last
    np.testing.assert_array_equal(c.y, [[1, 0], [0, 1], [1, 0], [1, 0]])
    with pytest.raises(ECGNetError, match="column\\(s\\) lvh: unknown class"):
        read_manifest(manifest(folder, "record,lvh\nrecs/r0.hea,1\n", "n.csv"), label_map=folder / "map.csv")


def test_skip_bad_lists_and_skips_never_silently(folder):
    text = GOOD + "recs/missing.hea,p9,s2,40,F,1,0\nrecs/r3.hea,p3,s2,abc,F,1,0\n"
    with pytest.raises(ECGNetError, match="2 problem\\(s\\)"):
        read_manifest(manifest(folder, text))
    c = read_manifest(manifest(folder, text), skip_bad=True)
    assert len(c) == 3 and [s[0] for s in c.skipped] == ["line 5 (recs/missing.hea)", "line 6 (recs/r3.hea)"]


def test_unreadable_record_found_by_the_cache(folder, tmp_path):
    (folder / "recs" / "r3.dat").write_bytes(b"\x00" * 10)  # truncated signal file
    path = manifest(folder, "record,A\nrecs/r0.hea,1\nrecs/r1.hea,0\nrecs/r3.hea,1\n")
    c = read_manifest(path)
    with pytest.raises(ECGNetError, match="line 4 \\(record 'recs/r3.hea'\\)"):
        c.load_signals(100, cache_dir=tmp_path / "cache", progress=False)
    loaded = c.load_signals(100, cache_dir=tmp_path / "cache", progress=False, skip_bad=True)
    assert len(loaded) == 2 and loaded.skipped[0][0] == "recs/r3.hea"


def test_a_short_record_is_repeated_to_10_s_and_one_under_the_window_refused(folder, tmp_path):
    """A 7 s record was zero-padded to 10 s: training crops of a flat line carried its labels, and validation
    windows of zeros were scored (an all-zero window scores CD 0.96; found in a parity audit). Now it repeats;
    a 2 s record, which predict refuses, is refused here too rather than trained on."""
    from ecgnet.data.records import read_ecg

    write_wfdb(folder / "recs", "short", fs=500, samples=3500, seed=7)
    write_wfdb(folder / "recs", "tiny", fs=500, samples=1000, seed=8)
    c = read_manifest(manifest(folder, "record,A\nrecs/r0.hea,1\nrecs/short.hea,0\nrecs/tiny.hea,1\n"))
    with pytest.raises(ECGNetError, match=r"tiny\.hea: 2\.0 s of signal; a record needs at least 2\.5 s"):
        c.load_signals(100, cache_dir=tmp_path / "cache", progress=False)
    loaded = c.load_signals(100, cache_dir=tmp_path / "cache", progress=False, skip_bad=True)
    assert len(loaded) == 2 and loaded.skipped[0][0] == "recs/tiny.hea"
    own = read_ecg(folder / "recs" / "short.hea", 100, resample=True).signal  # 700 samples
    row = np.asarray(loaded.signal[1])
    np.testing.assert_allclose(row[:, :700], own, atol=1e-6)
    np.testing.assert_allclose(row[:, 700:1000], own[:, :300], atol=1e-6)  # its own ECG again, not zeros


def test_cache_resamples_parallel_equals_serial(folder, tmp_path):
    c = read_manifest(manifest(folder, "record,A\n" + "".join(f"recs/r{i}.hea,{i % 2}\n" for i in range(4))))
    serial = c.load_signals(100, cache_dir=tmp_path / "a", workers=1, progress=False)
    parallel = c.load_signals(100, cache_dir=tmp_path / "b", workers=2, progress=False)
    assert serial.signal.shape == (4, 12, 1000)
    np.testing.assert_array_equal(np.asarray(serial.signal), np.asarray(parallel.signal))
    again = c.load_signals(100, cache_dir=tmp_path / "a", workers=1, progress=False)  # memory-mapped reuse
    assert isinstance(again._array, np.memmap)
    from ecgnet.data.records import read_ecg

    np.testing.assert_allclose(serial.signal[1], read_ecg(folder / "recs" / "r1.hea", 100, resample=True).signal)


def test_fold_column_and_subset(folder):
    c = read_manifest(manifest(folder, "record,fold,A\nrecs/r0.hea,1,1\nrecs/r1.hea,2,0\nrecs/r2.hea,2,1\n"))
    assert c.folds.tolist() == [1, 2, 2]
    assert c.subset(c.folds == 2).records.tolist() == ["recs/r1.hea", "recs/r2.hea"]
    with pytest.raises(ECGNetError, match="column fold is empty on 1 of 2 rows"):
        read_manifest(manifest(folder, "record,fold,A\nrecs/r0.hea,1,1\nrecs/r1.hea,,0\n", "n.csv"))


# --- folds --------------------------------------------------------------------------------------

def test_stratified_group_folds_keep_patients_and_balance_classes():
    rng = np.random.default_rng(0)
    patients = rng.integers(0, 150, 400).astype(str)
    y = (rng.random((400, 4)) < [0.5, 0.2, 0.1, 0.03]).astype(float)
    folds = stratified_group_folds(y, patients, 5, seed=1)
    assert set(folds) == {1, 2, 3, 4, 5}
    for p in set(patients):
        assert len(set(folds[patients == p])) == 1
    sizes = np.bincount(folds)[1:]
    assert sizes.min() > 0.6 * 80 and sizes.max() < 1.4 * 80
    for k in range(4):
        per_fold = [y[folds == f, k].sum() for f in range(1, 6)]
        assert max(per_fold) - min(per_fold) <= max(3, 0.35 * y[:, k].sum() / 5), (k, per_fold)
    np.testing.assert_array_equal(folds, stratified_group_folds(y, patients, 5, seed=1))  # reproducible


@pytest.mark.parametrize("seed", range(5))
def test_with_a_record_per_patient_every_class_is_spread_within_one_across_folds(seed):
    """One record per patient leaves the splitter free: each class's positives and the fold sizes differ by at
    most one between folds (placing the commonest class first instead of the rarest reached 4; found by a
    mutation the looser bounds above let through), and another seed gives other folds."""
    rng = np.random.default_rng(10 + seed)
    y = (rng.random((400, 4)) < [0.5, 0.2, 0.1, 0.03]).astype(float)
    folds = stratified_group_folds(y, np.arange(400), 5, seed=seed)
    counts = np.array([[y[folds == f, k].sum() for f in range(1, 6)] for k in range(4)])
    assert (counts.max(1) - counts.min(1) <= 1).all(), counts
    sizes = np.bincount(folds)[1:]
    assert sizes.max() - sizes.min() <= 1, sizes
    assert not np.array_equal(folds, stratified_group_folds(y, np.arange(400), 5, seed=seed + 1))


def test_source_folds_and_patient_conflict():
    folds, names = source_folds(["b", "a", "b"], ["1", "2", "3"])
    assert names == ["a", "b"] and folds.tolist() == [2, 1, 2]
    with pytest.raises(ECGNetError, match=r"needs at least two sources; the collection has one: 'a' \(its source column"):
        source_folds(np.array(["a", "a"]), ["1", "2"])
    with pytest.raises(ECGNetError, match="patient '1' has records in sources"):
        source_folds(["a", "b"], ["1", "1"])


def test_inner_split_is_patient_grouped():
    patients = np.repeat(np.arange(20).astype(str), 3)
    y = np.tile([[1, 0], [0, 1], [1, 1]], (20, 1)).astype(float)
    val = inner_split(y, patients, 0.2, seed=0)
    assert 0.1 < val.mean() < 0.35
    assert not set(patients[val]) & set(patients[~val])


# --- writers --------------------------------------------------------------------------------------

@pytest.mark.skipif(not CINC.is_dir(), reason="needs ../shared/external/cinc2021-samples")
def test_challenge_manifest_counts(tmp_path):
    from ecgnet.data.collections.make import challenge_manifest

    out = challenge_manifest(CINC, tmp_path / "cinc.csv")
    c = read_manifest(tmp_path / "cinc.csv")
    assert out["records"] == len(c) == 92 and len(out["left_out"]) == 122 - 92  # no superclass: left out, listed
    assert c.classes == ["NORM", "MI", "STTC", "CD", "HYP"] and len(set(c.sources)) == 6
    assert c.counts().loc["total", "MI"] == 21


def test_challenge_manifest_lists_files_without_a_header_and_refuses_a_file(tmp_path):
    """`predict FOLDER` now finds an orphan .mat and an empty .dcm to fail on their own rows; `ecgnet manifest`
    listed them as 'no superclass among its #Dx codes', and given a CSV it said 'none of 1 records has a
    superclass label' (a user-workflow audit)."""
    from ecgnet.data.collections.make import challenge_manifest
    from test_records import write_challenge

    for i in range(2):
        write_challenge(tmp_path / "db", name=f"A{i}", seed=i, comments=("Dx: 426783006",))  # sinus rhythm: NORM
    (tmp_path / "db" / "B0.mat").write_bytes((tmp_path / "db" / "A0.mat").read_bytes())
    (tmp_path / "db" / "empty.dcm").write_bytes(b"")
    out = challenge_manifest(tmp_path / "db", tmp_path / "m.csv")
    assert out["records"] == 2
    assert sorted((r["record"], r["why"]) for r in out["left_out"]) == [
        ("db/B0.mat", "not a WFDB record with its header"), ("db/empty.dcm", "not a WFDB record with its header")]
    with pytest.raises(ECGNetError, match=r"m.csv: a file; `ecgnet manifest` writes a manifest from a folder"):
        challenge_manifest(tmp_path / "m.csv", tmp_path / "again.csv")


def test_ptbxl_manifest_matches_the_ptbxl_collection(ptbxl_root, tmp_path):
    from ecgnet.data.collections import ptbxl_collection
    from ecgnet.data.collections.make import ptbxl_manifest

    ptbxl_manifest(ptbxl_root, tmp_path / "p.csv", "superdiagnostic", max_records=40, seed=3)
    m = read_manifest(tmp_path / "p.csv")
    native = ptbxl_collection(ptbxl_root, "superdiagnostic")
    ids = [int(Path(r).name.split("_")[0]) for r in m.records]
    rows = np.searchsorted(native.records.astype(int), ids)
    sub = native.subset(rows)
    assert m.classes == sub.classes
    np.testing.assert_array_equal(m.y, sub.y)
    np.testing.assert_array_equal(m.folds, sub.folds)
    np.testing.assert_array_equal(m.patients.astype(str), sub.patients.astype(str))
    np.testing.assert_allclose(m.metadata.to_numpy(float), sub.metadata.to_numpy(float), equal_nan=True)
    a = m.load_signals(100, cache_dir=tmp_path / "cache", progress=False)
    b = sub.load_signals(100)
    np.testing.assert_array_equal(np.asarray(a.signal), np.asarray(b.signal))


def test_the_whole_ptbxl_manifest_passes_its_own_check(ptbxl_root, tmp_path):
    """PTB-XL holds three heights of 6 cm: written empty (unknown), listed, so the manifest reads back whole."""
    from ecgnet.data.collections.make import ptbxl_manifest

    out = ptbxl_manifest(ptbxl_root, tmp_path / "p.csv", "superdiagnostic")
    assert len(read_manifest(tmp_path / "p.csv")) == out["records"] == 21430  # 407 without a superclass
    assert [(b["column"], b["value"]) for b in out["blanked"]] == [("height", 6.0)] * 3
    assert sorted(Path(b["record"]).name for b in out["blanked"]) == ["09317_lr", "09384_lr", "15207_lr"]


def test_manifest_command_leaves_nothing_when_its_check_fails(tmp_path):
    """The written manifest is checked (here against a label map that does not exist): on failure one error
    naming the file, a non-zero exit, and no manifest left behind."""
    from typer.testing import CliRunner

    from ecgnet.cli import app

    for i in range(2):
        header, _ = write_wfdb(tmp_path / "recs", f"r{i}", fs=500, seed=i)
        header.write_text(header.read_text() + "#Dx: 426783006\n")  # sinus rhythm → NORM
    out = tmp_path / "m.csv"
    result = CliRunner().invoke(app, ["manifest", str(tmp_path / "recs"), "-o", str(out),
                                      "--label-map", str(tmp_path / "missing.yaml")])
    assert result.exit_code != 0 and "missing.yaml" in result.output
    assert not out.exists()


FORMATS = CINC.parent / "formats"


@pytest.mark.skipif(not FORMATS.is_dir(), reason="needs ../shared/external/formats")
def test_manifest_rows_accept_device_formats(folder, tmp_path):
    """Rows naming MUSE, Philips, HL7 aECG, DICOM and SCP-ECG files are cached like WFDB records."""
    files = sorted(p for p in FORMATS.rglob("*") if p.is_file() and p.name != "README.md")
    lines = ["record,A"] + [f"{p},{i % 2}" for i, p in enumerate(files)] + ["recs/r0.hea,1"]
    c = read_manifest(manifest(folder, "\n".join(lines) + "\n"))
    loaded = c.load_signals(100, cache_dir=tmp_path / "cache", progress=False, skip_bad=True)
    assert len(loaded) >= len(files)  # a device file the readers refuse would be listed, never silent
    assert len(loaded) + len(loaded.skipped) == len(files) + 1
    x = np.asarray(loaded.signal)
    assert x.shape[1:] == (12, 1000) and np.isfinite(x).all() and (np.abs(x).max(axis=2) > 0.05).all()


def test_manifest_cache_is_checked_by_data_verify(folder, tmp_path):
    from ecgnet.data.signals import verify_caches

    c = read_manifest(manifest(folder, "record,A\nrecs/r0.hea,1\nrecs/r1.hea,0\n"))
    c.load_signals(100, cache_dir=tmp_path / "cache", progress=False)
    report = verify_caches(tmp_path / "cache", progress=False)
    assert report.ok and len(report.good) == 1 and report.good[0].startswith("manifest100_")
    array = next((tmp_path / "cache").glob("manifest*.npy"))
    data = bytearray(array.read_bytes())
    data[-5] ^= 0xFF  # one flipped byte
    array.write_bytes(bytes(data))
    assert not verify_caches(tmp_path / "cache", progress=False).ok


def test_a_class_that_is_the_runs_in_another_case_is_refused_not_dropped(folder, tmp_path):
    """'norm' for the run's 'NORM': evaluating would skip NORM, fine-tuning would train new classes."""
    from ecgnet.training.collection_command import train_command

    path = manifest(folder, "record,labels\nrecs/r0.hea,norm\nrecs/r1.hea,MI\n")
    with pytest.raises(ECGNetError, match=r"m.csv: class\(es\) 'norm' \(the run's 'NORM'\) differ .* would train new classes"):
        train_command(None, [], manifest=path, source="long_time", folds=2, runs_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()  # refused before anything was written
    collection = read_manifest(path)
    with pytest.raises(ECGNetError, match="would not be scored"):
        collection.refuse_case_twins(["CD", "HYP", "MI", "NORM", "STTC"], "they would not be scored")
    collection.refuse_case_twins(["norm", "MI"], "-")  # exact names: nothing to refuse
    (folder / "map.yaml").write_text("normal: Norm\ninfarct: MI\n")  # the map's classes: fixed in the map
    mapped = read_manifest(manifest(folder, "record,labels\nrecs/r0.hea,normal\nrecs/r1.hea,infarct\n", "n.csv"),
                           folder / "map.yaml")
    with pytest.raises(ECGNetError, match=r"'Norm' \(the run's 'NORM'\) .*; write them as the run does in the label map "
                                          r".*map.yaml$"):
        mapped.refuse_case_twins(["CD", "HYP", "MI", "NORM", "STTC"], "they would not be scored")


def test_a_ptbxl_manifest_at_500_hz_without_its_records_is_one_line(ptbxl_root, tmp_path):
    """Without records500/, `ecgnet manifest DIR --sampling-rate 500` listed 21,430 missing files."""
    from ecgnet.data.collections.make import ptbxl_manifest

    if (ptbxl_root / "records500").is_dir():
        pytest.skip("this PTB-XL copy has its 500 Hz records")
    with pytest.raises(ECGNetError, match=r"records500: missing — the 500 Hz records are not in .*--with-500hz"):
        ptbxl_manifest(ptbxl_root, tmp_path / "m.csv", sampling_rate=500)
    assert not (tmp_path / "m.csv").exists()


def test_manifest_options_of_the_other_source_are_refused_not_ignored(tmp_path):
    """--task/--sampling-rate on a Challenge folder and --labels on PTB-XL were silently ignored."""
    from typer.testing import CliRunner

    from ecgnet.cli import app
    (tmp_path / "recs").mkdir()
    for args, message in ((["--task", "rhythm"], "--task apply to a PTB-XL folder"),
                          (["--sampling-rate", "500"], "--sampling-rate apply to a PTB-XL folder")):
        result = CliRunner().invoke(app, ["manifest", str(tmp_path / "recs"), "-o", str(tmp_path / "m.csv"), *args])
        assert result.exit_code == 2 and message in result.output, result.output
    ptbxl = tmp_path / "ptbxl"
    ptbxl.mkdir()
    (ptbxl / "ptbxl_database.csv").touch()
    result = CliRunner().invoke(app, ["manifest", str(ptbxl), "-o", str(tmp_path / "m.csv"), "--labels", "snomed"])
    assert result.exit_code == 2 and "--labels applies to a Challenge folder" in result.output
    assert not (tmp_path / "m.csv").exists()


def test_manifests_as_spreadsheets_and_data_frames_write_them(folder):
    """What R, pandas and spreadsheet programs write was misread in silence (found in a manifest audit): R's
    'NA' became a class, 'STTC / CD' a new class, 'Sex' (capitalised) a class column, pandas' index column a
    class; '1.00' was refused and trailing ',,' columns made an error naming nothing."""
    text = ('"",Unnamed: 0,Record,Sex,AGE,Fold,labels,,\n'
            '1,0,recs/r0.hea,F,NA,1,NORM,,\n'
            '2,1,recs/r1.hea,Male,>89,2,STTC;CD,,\n'
            '3,2,recs/r2.hea,NA,61,NA,CD,,\n')
    c = read_manifest(manifest(folder, text.replace(",NA,CD", ",1,CD")))
    assert c.classes == ["CD", "NORM", "STTC"] and c.metadata["sex"].tolist()[:2] == [1.0, 0.0]
    assert np.isnan(c.metadata["age"].tolist()[0]) and c.metadata["age"].tolist()[1] == 90
    assert list(c.folds) == [1, 2, 1]
    joined = "record,labels\nrecs/r0.hea,STTC\nrecs/r1.hea,CD\nrecs/r2.hea,STTC / CD\nrecs/r3.hea,MI+CD\n"
    with pytest.raises(ECGNetError, match="line 4 .*'STTC / CD' looks like 2 labels"):
        read_manifest(manifest(folder, joined))
    skipped = read_manifest(manifest(folder, joined), skip_bad=True)
    assert skipped.classes == ["CD", "MI+CD", "STTC"]  # 'MI+CD' stays one class: MI is no label of its own here
    na = read_manifest(manifest(folder, "record,labels\nrecs/r0.hea,NORM\nrecs/r1.hea,NA\n"), skip_bad=True)
    assert na.classes == ["NORM"] and len(na) == 1  # NA is a row without labels, never a class
    floats = read_manifest(manifest(folder, "record,A,B\nrecs/r0.hea,1.00,0.00\nrecs/r1.hea,NA,1\n"))
    np.testing.assert_array_equal(floats.y, [[1, 0], [np.nan, 1]])


def test_a_duplicate_of_a_bad_row_is_named_at_once_and_kept_with_skip_bad(folder):
    """Every problem at once: a record's second row is named a duplicate of its first even when that row has
    another problem (found in a wheel audit); with --skip-bad the bad row goes and the good one stays (review)."""
    text = "record,sex,A\nrecs/r0.hea,X,1\nrecs/r1.hea,male,0\nrecs/r0.hea,male,1\n"
    with pytest.raises(ECGNetError, match=r"line 4 .*duplicate record \(also on line 2, which has other problems\)"):
        read_manifest(manifest(folder, text))
    kept = read_manifest(manifest(folder, text), skip_bad=True)
    assert list(kept.records) == ["recs/r1.hea", "recs/r0.hea"] and [s[0] for s in kept.skipped] == ["line 2 (recs/r0.hea)"]


def test_a_duplicate_of_a_bad_row_that_is_bad_too_is_named_at_once(folder):
    """Lines 2-3 'JS00001.hea' and 'JS00001', each with a bad age and sex, listed only those: the duplicate came
    after they were fixed (a user audit). Named once on each later row; with --skip-bad the good copy stays."""
    write_wfdb(folder, "JS00001", fs=500, seed=0)
    text = ("record,age,sex,A\nJS00001.hea,sixty,X,1\nJS00001,old,Y,0\nrecs/r0.hea,50,male,1\n"
            "JS00001.hea,60,male,1\nJS00001,sixty,male,1\n")
    with pytest.raises(ECGNetError) as e:
        read_manifest(manifest(folder, text))
    duplicates = [line.split(" (record ")[0].rsplit(" ", 1)[1] + line.split("column record:")[1]
                  for line in str(e.value).splitlines() if "column record: duplicate" in line]
    assert duplicates == ["3 duplicate record (also on line 2)",
                          "5 duplicate record (also on line 2, which has other problems)",
                          "6 duplicate record (also on line 2)"]  # each once
    kept = read_manifest(manifest(folder, text), skip_bad=True)  # the good copy stays
    assert list(kept.records) == ["recs/r0.hea", "JS00001.hea"]
    assert [s[0] for s in kept.skipped] == ["line 2 (JS00001.hea)", "line 3 (JS00001)", "line 6 (JS00001)"]
    assert kept.skipped[2][1] == "column record: duplicate record (also on line 5); column age: 'sixty' is not a number"


def test_a_column_without_a_name_is_an_index_or_refused(folder):
    """'Unnamed: 2' (pandas) or an empty name (a spreadsheet) holding 1/0 is a class column that lost its name:
    it was dropped in silence (found in review); an index (values that never repeat) is still ignored."""
    with pytest.raises(ECGNetError, match=r"line 1, column 3: no name, but values that repeat \(e.g. '1'\)"):
        read_manifest(manifest(folder, "record,MI,Unnamed: 2\nrecs/r0.hea,1,1\nrecs/r1.hea,0,1\n"))
    with pytest.raises(ECGNetError, match="column 3: no name"):
        read_manifest(manifest(folder, "record,MI,\nrecs/r0.hea,1,0\nrecs/r1.hea,0,0\n"))
    c = read_manifest(manifest(folder, "Unnamed: 0,record,MI,,\n0,recs/r0.hea,1,,\n1,recs/r1.hea,0,,\n"))
    assert c.classes == ["MI"] and len(c) == 2


def test_a_yaml_label_map_keeps_its_codes_as_written(folder, tmp_path):
    """YAML 1.1 read the code 0101 as 65, NO as False, 1.10 as 1.1: with '"*": null' those rows were silently
    all-negative, without it 'unknown class 0101 (not in the label map)' although the map lists it."""
    label_map = tmp_path / "map.yaml"
    label_map.write_text('"*": null\n0101: MI\nNO: NORM\n1.10: [STTC, CD]\n')
    assert read_label_map(label_map) == {"*": [], "0101": ["MI"], "NO": ["NORM"], "1.10": ["STTC", "CD"]}
    c = read_manifest(manifest(folder, "record,labels\nrecs/r0.hea,0101\nrecs/r1.hea,NO;1.10;NA\n"), label_map)
    np.testing.assert_array_equal(c.y, [[0, 1, 0, 0], [1, 0, 1, 1]])  # classes CD, MI, NORM, STTC; NA: nothing
    label_map.write_text("Y: [MI, null]\nZ: ~\n")  # a null in a list is nothing, not a class 'null' (review)
    assert read_label_map(label_map) == {"Y": ["MI"], "Z": []}
    as_json = tmp_path / "map.json"
    as_json.write_text('{"0101": "MI", "x": [null, "CD"], "z": null}')
    assert read_label_map(as_json) == {"0101": ["MI"], "x": ["CD"], "z": []}
    as_json.write_text('{"0101": true}')
    with pytest.raises(ECGNetError, match="'0101': expected a class name, a list of them or null, got True"):
        read_label_map(as_json)


def test_a_labels_cell_holding_the_maps_code_another_way_is_refused_even_with_the_wildcard(folder):
    """With '"*": null', 'Sinus rhythm. Normal ECG' (a whole statement in one cell) and 'normal ECG' were ignored
    like any unlisted code: 76 of 79 rows all-negative, evaluate's macro AUC 0.44 and no word (a hospital audit).
    They are refused with what they probably are; a class of the map written as itself is that class."""
    (folder / "map.yaml").write_text("Normal ECG: NORM\nInferior infarct: MI\nST depression: STTC\n'*': null\n")
    rows = ("record,labels\nrecs/r0.hea,Sinus rhythm. Normal ECG\nrecs/r1.hea,normal  ecg\n"
            "recs/r2.hea,Sinus rhythm;STTC\nrecs/r3.hea,Sinus rhythm;Inferior infarct\n")
    with pytest.raises(ECGNetError) as e:
        read_manifest(manifest(folder, rows), label_map=folder / "map.yaml")
    text = " ".join(str(e.value).split())
    assert "line 2 (record 'recs/r0.hea'), column labels: unknown code 'Sinus rhythm. Normal ECG' (not in the label " \
           "map; it holds the map's 'Normal ECG' beside other words: one statement per label, separated with ';')" in text
    assert "line 3 (record 'recs/r1.hea'), column labels: unknown code 'normal ecg' (not in the label map; did you " \
           "mean the map's 'Normal ECG'?)" in text
    assert "2 problem(s)" in text and '"*": null' not in text  # the wildcard is no fix for these
    lower = manifest(folder, "record,labels\nrecs/r0.hea,sttc\nrecs/r1.hea,Inferior infarct\n", "lower.csv")
    with pytest.raises(ECGNetError, match=r"unknown code 'sttc' \(not in the label map; did you mean the class "
                                          r"'STTC'\?\)"):  # a class in another case: all-negative under '*' (review)
        read_manifest(lower, label_map=folder / "map.yaml")
    c = read_manifest(manifest(folder, rows), label_map=folder / "map.yaml", skip_bad=True)
    assert c.classes == ["MI", "NORM", "STTC"] and len(c) == 2
    np.testing.assert_array_equal(c.y, [[0, 0, 1], [1, 0, 0]])  # STTC as itself; 'Sinus rhythm' ignored by '*'


def test_a_label_map_that_gives_a_code_twice_is_refused(tmp_path):
    """YAML and JSON keep the last of two entries for one code without a word: 'Normal ECG: NORM' then, further
    down, 'Normal ECG: HYP' made every normal ECG a hypertrophy (found in a hospital audit). A CSV map lists a code
    on several lines on purpose (one class a line), so only YAML and JSON are refused."""
    label_map = tmp_path / "map.yaml"
    label_map.write_text("Normal ECG: NORM\nInferior infarct: MI\nNormal ECG: HYP\n")
    with pytest.raises(ECGNetError, match=r"map.yaml line 3: 'Normal ECG' is given twice \(also on line 1\)"):
        read_label_map(label_map)
    as_json = tmp_path / "map.json"
    as_json.write_text('{"Normal ECG": "NORM", "Normal ECG": "HYP"}')
    with pytest.raises(ECGNetError, match="map.json: 'Normal ECG' given twice in one object"):
        read_label_map(as_json)
    as_csv = tmp_path / "map.csv"
    as_csv.write_text("code,class\nMI+HYP,MI\nMI+HYP,HYP\n")
    assert read_label_map(as_csv) == {"MI+HYP": ["MI", "HYP"]}


def test_manifest_keeps_an_edited_file_and_a_manifest_the_map_does_not_fit(tmp_path):
    """`ecgnet manifest -o m.csv` replaced a manifest the user had edited without a word, and removed it when the
    --label-map check failed (the error then named lines of a file that was gone; a wheel-user audit)."""
    from typer.testing import CliRunner

    from ecgnet.cli import app
    from test_records import write_challenge

    for i in range(2):
        write_challenge(tmp_path / "db", name=f"A{i}", seed=i, comments=("Dx: 426783006",))
    out = tmp_path / "m.csv"
    args = ["manifest", str(tmp_path / "db"), "-o", str(out), "--labels", "snomed"]
    assert CliRunner().invoke(app, args).exit_code == 0
    written = out.read_bytes()
    assert CliRunner().invoke(app, args).exit_code == 0 and out.read_bytes() == written  # the same again: fine
    out.write_bytes(written + b"# my edits\n")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "exists and differs from the manifest written now" in result.stderr
    assert out.read_bytes() == written + b"# my edits\n"  # kept as it was
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # nothing left beside it
    assert CliRunner().invoke(app, [*args, "--force"]).exit_code == 0 and out.read_bytes() == written
    (tmp_path / "map.yaml").write_text("'164889003': AF\n")  # does not list the records' code
    result = CliRunner().invoke(app, [*args, "--label-map", str(tmp_path / "map.yaml")])
    assert result.exit_code == 2 and f"wrote {out} (2 records); it does not fit the label map" in \
        " ".join(result.stderr.split())
    assert out.read_bytes() == written  # kept: the map is what to fix
    (tmp_path / "a_file").write_text("")
    result = CliRunner().invoke(app, ["manifest", str(tmp_path / "db"), "-o", str(tmp_path / "a_file" / "m.csv")])
    assert result.exit_code == 2 and str(tmp_path / "a_file" / "m.csv") in " ".join(result.stderr.split())
    assert ".tmp" not in result.stderr  # the output as named, not the temporary file beside it (a review)


def test_manifest_of_records_without_dx_lines_says_to_write_one(tmp_path):
    """A site's own WFDB records (no '#Dx:' lines) got 'none of 108 records has a superclass label', without
    saying why or what to do (found in a site audit)."""
    from ecgnet.data.collections.make import make_manifest

    write_wfdb(tmp_path / "site", "r1", fs=500)
    with pytest.raises(ECGNetError, match=r"none of 1 records has a superclass label \(none has a '#Dx:' line: "
                                          r"`ecgnet manifest` labels Challenge-style folders and PTB-XL; for other "
                                          r"records write the manifest yourself"):
        make_manifest(tmp_path / "site", tmp_path / "m.csv", None, None, None, None)
    assert not (tmp_path / "m.csv").exists()


@pytest.mark.parametrize("ours, run, expected", [
    (["NORM", "STCC"], ["NORM", "STTC"], [("STCC", "STTC")]),  # one letter off, 4+ letters
    (["NORM", "HPY"], ["NORM", "HYP"], [("HPY", "HYP")]),  # short: neighbours swapped
    (["DC"], ["CD"], [("DC", "CD")]),
    (["AMI"], ["IMI"], []),  # short names one letter apart are real, different SCP codes
    (["MII"], ["MI"], []),
    (["HYP", "HPY"], ["HYP"], []),  # the run's class is present: HPY is a class of its own
    (["PYH"], ["HYP"], []),  # more than one swap
    (["LPFB"], ["LAFB"], []),  # PTB-XL's own codes, each a real class
    (["ISCAN", "INJAS"], ["ISCAL", "INJAL"], []),
    (["LPFB", "ISCNA"], ["LAFB", "ISCAN"], [("ISCNA", "ISCAN")]),  # a typo of a real code is still caught
])
def test_near_misses_name_likely_typos_of_the_runs_classes(ours, run, expected):
    from types import SimpleNamespace

    from ecgnet.data.collections.base import Collection

    assert Collection.near_misses(SimpleNamespace(classes=ours), run) == expected


def test_the_scp_codes_known_without_the_data_folder_are_ptbxls(ptbxl_root):
    """SCP_CODES (kept in the package, so the typo check needs no data folder) is exactly PTB-XL's statements,
    diagnostic subclasses and superclasses."""
    from ecgnet.data.ptbxl import SCP_CODES

    statements = pd.read_csv(ptbxl_root / "scp_statements.csv", index_col=0)
    names = set(statements.index) | set(statements["diagnostic_subclass"].dropna()) | set(
        statements["diagnostic_class"].dropna())
    assert len(statements) == 71 and SCP_CODES == names



def test_a_run_s_label_map_is_recorded_and_named_when_a_manifest_fails_without_it(folder):
    """A run trained with --label-map kept the map only in its command line; scoring it on the same manifest
    without the map gave a 'looks like 2 labels' error per row and no word of the map (a user-workflow audit)."""
    from types import SimpleNamespace

    from ecgnet.checksum import sha256_file
    from ecgnet.evaluation.labelled import read_for_run

    (folder / "map.yaml").write_text("'ST elevation, anterior': MI\nsinus rhythm: NORM\n")
    path = manifest(folder, 'record,labels\nrecs/r0.hea,"ST elevation, anterior"\nrecs/r1.hea,sinus rhythm\n')
    c = read_manifest(path, label_map=folder / "map.yaml")
    assert c.info["label_map"] == {"path": str((folder / "map.yaml").resolve()),
                                   "sha256": sha256_file(folder / "map.yaml")}  # run.json's collection keeps it
    assert "label_map" not in read_manifest(manifest(folder, "record,A\nrecs/r0.hea,1\n", "plain.csv")).info
    run = SimpleNamespace(info={"collection": c.info})
    with pytest.raises(ECGNetError, match=r"^this run was trained with --label-map .*map.yaml: give it here too"):
        read_for_run(run, path, None, False)  # said first, before the rows' problems that follow from it (an audit)
    assert read_for_run(run, path, folder / "map.yaml", False).classes == ["MI", "NORM"]


def test_a_run_s_label_map_is_named_when_the_manifest_s_codes_read_as_classes_none_of_the_run_s(folder):
    """Site codes such as N01 read fine as classes without the run's map: evaluate then said 'no class in common
    … map site codes with --label-map' and not which map the run was trained with (a user audit)."""
    from types import SimpleNamespace

    from ecgnet.evaluation.labelled import predict_collection

    (folder / "map.yaml").write_text("N01: NORM\nM01: MI\n")
    path = manifest(folder, "record,labels\nrecs/r0.hea,N01\nrecs/r1.hea,M01\n")
    trained = read_manifest(path, label_map=folder / "map.yaml")
    run = SimpleNamespace(classes=["MI", "NORM"], info={"collection": trained.info})
    used = re.escape(str((folder / "map.yaml").resolve()))
    with pytest.raises(ECGNetError, match=rf"^this run was trained with --label-map {used}: give it here too "
                                          rf"\(--label-map {used}\) — .*M01, N01: no class in common"):
        predict_collection(run, read_manifest(path), progress=False)
    with pytest.raises(ECGNetError, match=r"^the run predicts MI, NORM; .*no class in common"):  # no map: as before
        predict_collection(SimpleNamespace(classes=["MI", "NORM"], info={}), read_manifest(path), progress=False)


def test_a_class_that_joins_the_runs_classes_is_refused_not_trained(folder, tmp_path):
    """'MI+HYP' and 'STTC / CD' in a labels column became classes of their own when the manifest did not also use
    the parts alone: a fine-tune trained them as new classes, evaluate ignored them (a user-workflow audit)."""
    from ecgnet.training.collection_command import train_command

    path = manifest(folder, "record,labels\nrecs/r0.hea,MI+HYP\nrecs/r1.hea,STTC / CD\nrecs/r2.hea,NORM\n")
    collection = read_manifest(path)
    assert "MI+HYP" in collection.classes  # as a manifest alone, nothing says these are joined labels
    with pytest.raises(ECGNetError, match=r"m.csv: class\(es\) 'MI\+HYP', 'STTC / CD' look like several of the run's "
                                          r"classes joined .* would train new classes"):
        train_command(None, [], manifest=path, source="long_time", folds=2, runs_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()
    with pytest.raises(ECGNetError, match="would not be scored"):
        collection.refuse_joined(["CD", "HYP", "MI", "NORM", "STTC"], "they would not be scored")
    collection.refuse_joined(["MI+HYP", "STTC / CD", "NORM"], "-")  # the run's own names: nothing to refuse


# --- a hospital's spreadsheet (a data-scientist audit: free-text statements, MUSE XML/DICOM/EDF files) -------------

@pytest.mark.parametrize("text, expected", [
    ("record,MRN,labels\nrecs/r0.hea,1234,A\n", r"line 1: both a 'labels' column and per-class columns \(MRN\): use "
                                                 r"one layout — beside 'labels' every column must be one of record, "
                                                 r"labels, patient, .*: rename 'MRN' to 'patient'$"),
    ("record,Gender,labels\nrecs/r0.hea,M,A\n", r"\(Gender\): use one layout .*: rename 'Gender' to 'sex'$"),
    ("record,patient_id,accession,labels\nrecs/r0.hea,p,7,A\n", r"rename 'patient_id' to 'patient'; remove \(or "
                                                                r"rename to one of those\) accession$"),
    ("record,sex,Sex,labels\nrecs/r0.hea,M,M,A\n", r"'Sex' looks like a second 'sex' column: keep one"),
    ("file,MRN,statement\nrecs/r0.hea,1,A\n", r"line 1: no 'record' column \(columns: file, MRN, statement\): rename "
                                              r"'file' to 'record' \(each ECG file's path relative to the manifest\); "
                                              r"rename 'MRN' to 'patient'; rename 'statement' to 'labels'$"),
    ("record,PatientID,NORM\nrecs/r0.hea,1234,1\nrecs/r1.hea,5678,0\n",
     r"line 1, column\(s\) PatientID: not classes \(every column other than record, labels, .* is read as one class "
     r"of 1/0\): rename 'PatientID' to 'patient'$"),
    ("record,Gender,NORM\nrecs/r0.hea,M,1\nrecs/r1.hea,F,0\n", r"column\(s\) Gender: not classes .*rename 'Gender' "
                                                               r"to 'sex'$"),
    ("record,accession,NORM\nrecs/r0.hea,1234,1\nrecs/r1.hea,5678,0\n",
     r"line 1, column\(s\) accession: numbers \(e.g. '1234' on line 2\), not 1/0: .*a column that is neither a class "
     r"nor one of record, labels, .* must be removed, or renamed to one of them$"),
])
def test_columns_a_hospital_keeps_are_named_with_what_to_do(folder, text, expected):
    """'record, MRN, labels' said 'both a labels column and per-class columns (MRN): use one layout' and no more;
    'Gender' alike; 'file' without 'record' only listed the columns (found in a hospital audit)."""
    with pytest.raises(ECGNetError, match=expected):
        read_manifest(manifest(folder, text))


def test_the_renamed_hospital_columns_read(folder):
    c = read_manifest(manifest(folder, "record,patient,sex,labels\nrecs/r0.hea,1234,M,A\nrecs/r1.hea,1234,F,B\n"))
    assert list(c.patients) == ["1234", "1234"] and c.metadata["sex"].tolist() == [0.0, 1.0]


def test_a_semicolon_separated_header_is_named_whatever_its_case(folder):
    """'Record;Patient;…;Labels' (capitalised, as a comma-separated header is accepted) only listed its one column."""
    with pytest.raises(ECGNetError, match=r"no 'record' column \(columns: Record;Patient;source;age;sex;Labels\): the "
                                          r"header is ';'-separated .*save the manifest comma-separated"):
        read_manifest(manifest(folder, "Record;Patient;source;age;sex;Labels\nrecs/r0.hea;p;s;60;M;A\n"))


def test_a_csv_label_map_as_excel_saves_it(folder):
    """Excel (some locales) saves ';'-separated CSV: pandas said 'Error tokenizing data. C error: Expected 1 fields
    in line 3, saw 2' and a newline; a header 'Code,Class' was refused; a line with an unquoted ',' in its code
    mapped the code's last words ('anterior')."""
    path = folder / "map.csv"
    path.write_text('Code;Class\nst;MI\nST elevation, anterior;MI\n"a;b";NORM\n')
    assert read_label_map(path) == {"st": ["MI"], "ST elevation, anterior": ["MI"], "a;b": ["NORM"]}
    path.write_text(",,\n;;\n")  # nothing but separators: one error, not an IndexError (review)
    with pytest.raises(ECGNetError, match="map.csv line 1: a CSV label map needs the columns code,class"):
        read_label_map(path)
    path.write_text("Code,Class\nst,MI\n*,\n")
    assert read_label_map(path) == {"st": ["MI"], "*": []}
    path.write_text("code,class\nst,MI\nST elevation, anterior,MI\n")
    with pytest.raises(ECGNetError) as e:
        read_label_map(path)
    assert str(e.value) == (f"{path} line 3: 3 fields, the header has 2: one code and one class a line, separated "
                            "with ',' (a code that holds ',': put it in double quotes, \"ST elevation, anterior\"; "
                            "an empty class, as in '*,', ignores the code)")
    # a third column (a comment) keeps the field count of a code split at its unquoted ',' (Left of 2026-12-07)
    path.write_text("code,class,comment\nst,MI,\nST elevation, anterior,MI\nnormal,NORM,sinus\n")
    with pytest.raises(ECGNetError, match=r"map.csv line 3: the class 'anterior' follows ', ' as words of a sentence "
                                          r"do \(code 'ST elevation'\): is the code 'ST elevation, anterior' written "
                                          r"without quotes\?"):
        read_label_map(path)
    path.write_text('code,class,comment\nst,MI,\n"ST elevation, anterior",MI,\nnormal,NORM,sinus\nlvh,HYP,rare\n')
    assert read_label_map(path) == {"st": ["MI"], "ST elevation, anterior": ["MI"], "normal": ["NORM"],
                                    "lvh": ["HYP"]}
    path.write_text("code,class,parent\nmi,MI,\nami,AMI,MI\nimi,IMI,MI\n")  # a hierarchy: classes once each (review)
    assert read_label_map(path) == {"mi": ["MI"], "ami": ["AMI"], "imi": ["IMI"]}
    path.write_text("code, class, comment\nst, MI, elevation\nnormal, NORM, \n")  # spaced throughout: its style
    assert read_label_map(path) == {"st": ["MI"], "normal": ["NORM"]}
    path.write_text("codes;klasse\na;B\n")
    with pytest.raises(ECGNetError, match=r"line 1: a CSV label map needs the columns code,class \(got 'codes;klasse'"
                                          r"\): it is separated with ';'"):
        read_label_map(path)


def test_a_missing_record_names_a_file_that_differs_in_case_or_a_missing_folder(folder):
    """'site/ecg_09946.xml' beside 'site/ECG_09946.xml' on disk (a hospital audit) said only 'no such file in site'."""
    (folder / "site").mkdir()
    (folder / "site" / "ECG_09946.xml").write_text("<x/>")
    (folder / "site" / "ecg_1.dcm").write_bytes(b"")
    text = ("record,A\nsite/ecg_09946.xml,1\nsite/ECG_1.DCM,0\nrecs/R0.HEA,1\nrecs/R1,0\ngone/sub/x.xml,1\n"
            "site/other.xml,0\n")
    with pytest.raises(ECGNetError) as e:
        read_manifest(manifest(folder, text))
    lines = str(e.value).splitlines()[1:]
    site, recs = folder / "site", folder / "recs"
    assert lines == [
        f"{folder / 'm.csv'} line 2 (record 'site/ecg_09946.xml'), column record: no such file in {site} (a file "
        "differs only in case: ECG_09946.xml)",
        f"{folder / 'm.csv'} line 3 (record 'site/ECG_1.DCM'), column record: no such file in {site} (a file differs "
        "only in case: ecg_1.dcm)",
        f"{folder / 'm.csv'} line 4 (record 'recs/R0.HEA'), column record: no such file in {recs} (a file differs "
        "only in case: r0.hea)",
        f"{folder / 'm.csv'} line 5 (record 'recs/R1'), column record: no such file in {recs} (a file differs only "
        "in case: r1.hea)",
        f"{folder / 'm.csv'} line 6 (record 'gone/sub/x.xml'), column record: folder {folder / 'gone'} does not "
        "exist; record paths are relative to the manifest's folder",
        f"{folder / 'm.csv'} line 7 (record 'site/other.xml'), column record: no such file in {site}"]


def test_a_record_that_is_a_folder_is_said_to_be_one(folder):
    """Record 'ecgs/' said 'no such file in . (a file differs only in case: ecgs)': the folder named as its own case
    twin (a user audit). A folder is said to be one, with the ECG files it holds and how to name them."""
    (folder / "ecgs" / "sub").mkdir(parents=True)
    (folder / "ecgs" / "sub" / "JS00001.hea").write_text("")
    (folder / "ecgs" / "a.xml").write_text("<x/>")
    (folder / "ecgs" / "notes.txt").write_text("")
    (folder / "empty").mkdir()
    with pytest.raises(ECGNetError) as e:
        read_manifest(manifest(folder, "record,A\necgs/,1\nempty,0\nrecs/r0.hea,1\n"))
    lines = str(e.value).splitlines()[1:]
    assert lines == [
        f"{folder / 'm.csv'} line 2 (record 'ecgs/'), column record: {folder / 'ecgs'} is a folder, not an ECG file; "
        "it holds 2 ECG file(s): each record is one row naming a file (e.g. 'ecgs/a.xml')",
        f"{folder / 'm.csv'} line 3 (record 'empty'), column record: {folder / 'empty'} is a folder, not an ECG file "
        "(it holds no ECG file)"]
    assert "differs only in case" not in str(e.value)


def test_an_unknown_sex_is_empty_not_an_error(folder):
    """'U', 'Unknown', 'unk' (how hospitals write an unknown sex) were row errors; a number is still refused."""
    c = read_manifest(manifest(folder, "record,sex,A\nrecs/r0.hea,U,1\nrecs/r1.hea,Unknown,0\nrecs/r2.hea,unk,1\n"
                                       "recs/r3.hea,m,0\n"))
    assert np.isnan(c.metadata["sex"].tolist()[:3]).all() and c.metadata["sex"].tolist()[3] == 0.0
    with pytest.raises(ECGNetError, match=r"column sex: 'X' is not male/female \(or M/F\); leave it empty \(or write "
                                          r"U\) where the sex is unknown"):
        read_manifest(manifest(folder, "record,sex,A\nrecs/r0.hea,X,1\n", "x.csv"))
    with pytest.raises(ECGNetError, match="column sex: '2' is a number"):
        read_manifest(manifest(folder, "record,sex,A\nrecs/r0.hea,2,1\n", "n.csv"))


def test_manifest_of_a_folder_of_other_formats_says_to_write_one(tmp_path):
    """`ecgnet manifest` on MUSE XML, DICOM and EDF files said 'no WFDB records (.hea) found' and nothing more."""
    from typer.testing import CliRunner

    from ecgnet.cli import app

    (tmp_path / "site" / "a").mkdir(parents=True)
    for name in ("a/ECG_1.xml", "a/ECG_2.xml", "b.dcm", "c.EDF"):
        (tmp_path / "site" / name).write_bytes(b"<RestingECG/>")  # as a MUSE export names its root
    out = tmp_path / "m.csv"
    result = CliRunner().invoke(app, ["manifest", str(tmp_path / "site"), "-o", str(out)])
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and not out.exists(), result.output
    assert (f"{tmp_path / 'site'}: no WFDB records (.hea) found, but 4 ECG files of other formats (2 .xml, 1 .dcm, "
            "1 .edf): `ecgnet manifest` labels Challenge-style WFDB folders") in text, text
    assert "and PTB-XL; for other formats" in text and "write the manifest by hand" in text
    assert "ecgnet docs own_data" in text
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(app, ["manifest", str(tmp_path / "empty"), "-o", str(out)])
    assert "no WFDB records (.hea) found (nor an ECG file of another format ECGNet reads)" in result.output


def test_one_unmapped_code_is_said_in_the_singular(folder):
    (folder / "map.yaml").write_text("mi: MI\n")
    with pytest.raises(ECGNetError) as e:
        read_manifest(manifest(folder, "record,labels\nrecs/r0.hea,lvh\nrecs/r1.hea,mi\n"),
                      label_map=folder / "map.yaml")
    assert "\nit is a code the label map does not list (1 code: lvh (1 row)): add it to the map" in str(e.value)
    assert "1 codes" not in str(e.value)
    with pytest.raises(ECGNetError) as e:
        read_manifest(manifest(folder, "record,labels\nrecs/r0.hea,lvh\nrecs/r1.hea,lvh\n", "n.csv"),
                      label_map=folder / "map.yaml")
    assert "2 of them are codes the label map does not list (1 code: lvh (2 rows)): add it to the map" in str(e.value)
