"""The SNOMED CT → PTB-XL mapping (data/snomed_ptbxl.csv) and the Challenge labels built with it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecgnet.data.external import (SINUS_RHYTHMS, SUPERCLASSES, external_labels, load_mapping, parse_dx,
                                  superclass_labels, unmapped_codes)
from ecgnet.errors import ECGNetError

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "external" / "cinc2021-samples"
COLUMNS = ["snomed", "name", "abbreviation", "scp", "superclass", "reason"]


@pytest.fixture(scope="module")
def mapping() -> pd.DataFrame:
    return load_mapping()


def challenge_table(name: str) -> pd.DataFrame:
    path = SAMPLES / "mapping" / name
    if not path.is_file():
        pytest.skip(f"needs the Challenge tables in {path.parent}")
    return pd.read_csv(path, dtype=str)


# --- the table itself -----------------------------------------------------------------------

def test_table_shape(mapping):
    assert list(mapping.columns) == COLUMNS
    assert mapping["snomed"].str.fullmatch(r"\d+").all()
    assert mapping["snomed"].is_unique
    assert mapping["snomed"].astype(int).is_monotonic_increasing
    assert set(mapping["superclass"]) <= set(SUPERCLASSES) | {""}
    assert (mapping["reason"].str.len() > 10).all()
    assert not (mapping["superclass"] == "NORM").any()  # NORM comes only from the record-level rule


def test_superclass_only_rows_say_so(mapping):
    only = mapping[(mapping["scp"] == "") & (mapping["superclass"] != "")]
    assert only["reason"].str.startswith("superclass only").all()
    assert dict(zip(only["snomed"], only["superclass"])) == {
        "6374002": "CD", "57054005": "MI", "164865005": "MI", "164867002": "MI", "195060002": "CD",
        "195126007": "HYP", "204384007": "CD", "233917008": "CD", "266249003": "HYP"}


def test_every_challenge_code_has_one_row(mapping):
    challenge = pd.concat([challenge_table("dx_mapping_scored.csv"), challenge_table("dx_mapping_unscored.csv")])
    assert len(challenge) == 133
    assert sorted(mapping["snomed"]) == sorted(challenge["SNOMEDCTCode"])
    ours = mapping.set_index("snomed")
    for row in challenge.itertuples():
        assert ours.at[row.SNOMEDCTCode, "name"] == row.Dx
        assert ours.at[row.SNOMEDCTCode, "abbreviation"] == row.Abbreviation


def test_challenge_equivalent_codes_map_alike(mapping):
    names = challenge_table("weights_abbreviations.csv").columns[1:]
    groups = [n.split("|") for n in names if "|" in n]
    assert len(groups) == 4  # CLBBB|LBBB, CRBBB|RBBB, PAC|SVPB, PVC|VPB
    by_abbr = mapping.set_index("abbreviation")
    for group in groups:
        targets = {(by_abbr.at[a, "scp"], by_abbr.at[a, "superclass"]) for a in group}
        assert len(targets) == 1, group


def test_statements_exist_with_their_superclass(mapping, ptbxl_tables):
    _, statements = ptbxl_tables
    mapped = mapping[mapping["scp"] != ""]
    assert len(mapped) > 60
    for row in mapped.itertuples():
        assert row.scp in statements.index, row.snomed
        diagnostic = statements.at[row.scp, "diagnostic"] == 1
        expected = statements.at[row.scp, "diagnostic_class"] if diagnostic else ""
        assert row.superclass == expected, (row.snomed, row.scp)


@pytest.mark.parametrize("snomed, scp, superclass", [
    ("164865005", "", "MI"),  # myocardial infarction of unstated site: not IMI
    ("57054005", "", "MI"),  # acute MI: not PTB-XL's AMI (anterior MI)
    ("54329005", "AMI", "MI"),
    ("164873001", "LVH", "HYP"),
    ("55827005", "VCLVH", ""),  # voltage criteria only
    ("713427006", "CRBBB", "CD"), ("59118001", "CRBBB", "CD"),
    ("733534002", "CLBBB", "CD"), ("164909002", "CLBBB", "CD"),
    ("270492004", "1AVB", "CD"), ("27885002", "3AVB", "CD"), ("445118002", "LAFB", "CD"),
    ("164889003", "AFIB", ""), ("426783006", "SR", ""), ("426177001", "SBRAD", ""),
    ("428750005", "NST_", "STTC"), ("111975006", "LNGQT", "STTC"), ("164861001", "ISC_", "STTC"),
    ("164934002", "TAB_", ""), ("59931005", "INVT", ""), ("429622005", "STD_", ""),
    ("427172004", "PVC", ""), ("17338001", "PVC", ""), ("164884008", "PVC", ""),
    ("284470004", "PAC", ""), ("63593006", "PAC", ""), ("67741000119109", "LAO/LAE", "HYP"),
    ("426627000", "", ""),  # bradycardia of any origin is broader than SBRAD
    ("698247007", "", ""),  # 'CD' = cardiac dysrhythmia, not conduction disturbance
    ("266257000", "", ""),  # transient ischemic attack is cerebral
    ("39732003", "", ""), ("425856008", "", ""),
])
def test_known_pairs(mapping, snomed, scp, superclass):
    row = mapping.set_index("snomed").loc[snomed]
    assert (row["scp"], row["superclass"]) == (scp, superclass)


# --- parsing and the record-level rule ------------------------------------------------------

def test_parse_dx_odd_inputs():
    header = "A0001 12 500 5000\nA0001.mat 16+24 1000/mV 16 0 1 2 0 I\n#Age: 60\n#Dx: 164889003, 59118001 ,164889003,\n"
    assert parse_dx(header) == ["164889003", "59118001"]
    assert parse_dx("# Dx:426783006") == ["426783006"]
    assert parse_dx("#DX : 426783006 ,  ") == ["426783006"]
    assert parse_dx(["Age: 60", "Dx: 164865005,426783006"]) == ["164865005", "426783006"]  # wfdb comments
    assert parse_dx(["#Dx: 164865005", "#Dx: 426783006, 164865005"]) == ["164865005", "426783006"]
    assert parse_dx("#Age: 60\n#Sex: Male\n") == []
    assert parse_dx("#Dx:\n") == []
    assert parse_dx("") == []
    assert parse_dx("A0001 12 500 5000 Dx: 1\n") == []  # not a comment line
    with pytest.raises(ECGNetError, match="Unknown"):
        parse_dx("#Dx: Unknown")


def labels(*codes):
    return dict(zip(SUPERCLASSES, superclass_labels(codes).astype(int).tolist()))


def test_norm_rule():
    none = dict.fromkeys(SUPERCLASSES, 0)
    assert labels("426783006") == {**none, "NORM": 1}
    assert labels("426177001", "427393009") == {**none, "NORM": 1}  # sinus bradycardia + arrhythmia
    assert labels("426783006", "164873001") == {**none, "HYP": 1}
    assert labels("426783006", "59931005") == none  # another finding: not NORM, class unknown
    assert labels("426783006", "39732003") == none  # unmapped code: not NORM either
    assert labels("164889003") == none
    assert labels() == none
    assert labels("164865005", "713427006", "428750005") == {**none, "MI": 1, "CD": 1, "STTC": 1}
    assert superclass_labels(["426783006"], ["CD", "HYP", "MI", "NORM", "STTC"]).tolist() == [0, 0, 0, 1, 0]
    with pytest.raises(ECGNetError, match="unknown superclass"):
        superclass_labels(["426783006"], ["NORM", "AFIB"])


def test_sinus_rhythms_are_the_sinus_rows(mapping):
    sinus = mapping[mapping["scp"].isin(["SR", "SBRAD", "STACH", "SARRH"])]
    assert set(sinus["snomed"]) == SINUS_RHYTHMS


def test_unmapped_codes():
    assert unmapped_codes(["426783006", "39732003", "999", "39732003", "164865005"]) == ["39732003", "999"]
    assert unmapped_codes([]) == []


def test_external_labels_of_written_headers(tmp_path):
    for folder, name, dx in [("a", "R1", "426783006"), ("b", "R2", "164865005, 39732003"), ("b", "R3", "")]:
        (tmp_path / folder).mkdir(exist_ok=True)
        (tmp_path / folder / f"{name}.hea").write_text(f"{name} 12 500 5000\n#Age: 50\n#Dx: {dx}\n")
    headers = sorted(tmp_path.rglob("*.hea"))
    result = external_labels(headers)
    assert result.source == ["a", "b", "b"]
    assert result.y.astype(int).tolist() == [[1, 0, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 0, 0, 0]]
    assert result.unmapped == [[], ["39732003"], []]
    assert result.labeled.tolist() == [True, True, False]
    assert external_labels(headers, sources=["x", "y", "z"]).source == ["x", "y", "z"]
    with pytest.raises(ECGNetError, match="missing.hea"):
        external_labels([tmp_path / "missing.hea"])


# --- the 122 real Challenge samples ---------------------------------------------------------

# records, labeled, NORM, MI, STTC, CD, HYP per source database (worked out once, then pinned)
SAMPLE_POSITIVES = {
    "chapman_shaoxing": (10, 8, 5, 0, 1, 3, 0),
    "cpsc_2018": (10, 4, 1, 0, 0, 3, 0),
    "cpsc_2018_extra": (29, 27, 0, 13, 19, 6, 3),
    "georgia": (33, 31, 11, 0, 9, 7, 9),
    "ningbo": (30, 13, 0, 0, 6, 10, 2),
    "ptb": (10, 9, 1, 8, 0, 0, 0),
    "total": (122, 92, 18, 21, 35, 29, 14),
}


@pytest.fixture(scope="module")
def samples():
    if not (SAMPLES / "records.csv").is_file():
        pytest.skip(f"needs the Challenge sample records in {SAMPLES}")
    return external_labels(sorted(SAMPLES.rglob("*.hea")))


def test_sample_codes_match_records_csv(samples):
    listed = pd.read_csv(SAMPLES / "records.csv", dtype=str).set_index("record")
    assert len(samples.headers) == len(listed) == 122
    for header, codes, source in zip(samples.headers, samples.codes, samples.source):
        row = listed.loc[header.stem]
        assert codes == list(dict.fromkeys(row["dx_snomed"].split(";")))  # E00015 repeats a code
        assert source == row["source_db"]
    assert set().union(*samples.codes) <= set(load_mapping()["snomed"])


def test_sample_positives(samples):
    table = samples.positives()
    assert list(table.columns) == ["records", "labeled", *SUPERCLASSES]
    assert {s: tuple(int(v) for v in row) for s, row in table.iterrows()} == SAMPLE_POSITIVES
    assert not (samples.y[:, 0].astype(bool) & samples.y[:, 1:].any(axis=1)).any()  # NORM excludes the rest
    assert np.array_equal(samples.labeled, samples.y.any(axis=1))


# Every row of data/snomed_ptbxl.csv, as reviewed (SNOMED CT code : PTB-XL statement : superclass; "-" for
# none): a changed row is a changed label for every external record carrying that code, so each is pinned
# here, not only the consistency of statement and superclass (which accepts any statement of the right class).
REVIEWED = """
    368009:-:- 5609005:-:- 6374002:-:CD 10370003:PACE:- 11157007:BIGU:- 13640000:-:- 17338001:PVC:-
    17366009:-:- 27885002:3AVB:CD 29320008:-:- 39732003:-:- 47665007:-:- 49260003:-:- 49578007:-:- 50799005:-:-
    53741008:-:- 54016002:2AVB:CD 54329005:AMI:MI 55827005:VCLVH:- 55930002:NST_:STTC 57054005:-:MI
    59118001:CRBBB:CD 59931005:INVT:- 60423000:-:- 61277005:-:- 61721007:-:- 63593006:PAC:- 65778007:-:-
    67198005:PSVT:- 74390002:WPW:CD 74615001:-:- 75532003:-:- 77867006:-:- 81898007:-:- 82226007:IVCD:CD
    84114007:-:- 89792004:RVH:HYP 106068003:-:- 111288001:-:- 111975006:LNGQT:STTC 164861001:ISC_:STTC
    164865005:-:MI 164867002:-:MI 164873001:LVH:HYP 164884008:PVC:- 164889003:AFIB:- 164890007:AFLT:-
    164895002:-:- 164896001:-:- 164909002:CLBBB:CD 164912004:-:- 164917005:QWAVE:- 164921003:-:-
    164930006:NST_:STTC 164931005:STE_:- 164934002:TAB_:- 164937009:-:- 164942001:-:- 164947007:LPR:-
    164951009:ABQRS:- 195042002:2AVB:CD 195060002:-:CD 195080001:-:- 195101003:-:- 195126007:-:HYP
    204384007:-:CD 233892002:-:- 233897008:SVTAC:- 233917008:-:CD 251120003:ILBBB:CD 251139008:-:-
    251146004:LVOLT:- 251164006:PRC(S):- 251166008:SVTAC:- 251168009:BIGU:- 251170000:PAC:- 251173003:BIGU:-
    251180001:TRIGU:- 251182009:PVC:- 251187003:-:- 251198002:-:- 251199005:-:- 251200008:-:- 251205003:-:-
    251223006:-:- 251259000:-:- 251266004:PACE:- 251268003:PACE:- 253339007:RAO/RAE:HYP 253352002:LAO/LAE:HYP
    266249003:-:HYP 266257000:-:- 270492004:1AVB:CD 282825002:AFIB:- 284470004:PAC:- 314208002:AFIB:-
    365413008:-:- 370365005:-:- 413444003:ISC_:STTC 413844008:ISC_:STTC 418818005:-:- 425419005:ISCIN:STTC
    425623009:ISCLA:STTC 425856008:-:- 426177001:SBRAD:- 426183003:2AVB:CD 426434006:ISCAN:STTC 426627000:-:-
    426648003:SVTAC:- 426664006:-:- 426749004:AFIB:- 426761007:SVTAC:- 426783006:SR:- 426995002:-:-
    427084000:STACH:- 427172004:PVC:- 427393009:SARRH:- 428417006:-:- 428750005:NST_:STTC 429622005:STD_:-
    445118002:LAFB:CD 445211001:LPFB:CD 446358003:RAO/RAE:HYP 446813000:LAO/LAE:HYP 698247007:-:-
    698252002:IVCD:CD 704997005:STD_:- 713422000:SVTAC:- 713426002:IRBBB:CD 713427006:CRBBB:CD
    733534002:CLBBB:CD 67741000119109:LAO/LAE:HYP 67751000119106:-:-
"""


def test_every_row_matches_the_reviewed_table(mapping):
    reviewed = dict((code, (scp.replace("-", ""), sup.replace("-", "")))
                    for code, scp, sup in (item.split(":") for item in REVIEWED.split()))
    assert len(reviewed) == 133
    ours = {r.snomed: (r.scp, r.superclass) for r in mapping.itertuples()}
    assert ours == reviewed
    assert ours["74390002"] == ("WPW", "CD") and ours["413444003"] == ("ISC_", "STTC")  # WPW; acute ischaemia
