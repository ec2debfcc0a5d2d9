"""PTB-XL tables → label matrices for the six benchmark tasks, patient metadata, folds.

The label rules are those of the PTB-XL benchmark (Strodthoff et al. 2021,
``utils.compute_label_aggregations`` / ``select_data``):

- every statement listed in ``scp_codes`` counts, whatever its likelihood value;
- ``diagnostic`` uses statements with ``diagnostic == 1``; ``subdiagnostic`` / ``superdiagnostic`` map
  them to their ``diagnostic_subclass`` / ``diagnostic_class``;
- ``form`` and ``rhythm`` use statements with ``form == 1`` / ``rhythm == 1``; ``all`` uses every statement;
- classes are sorted alphabetically; records without any label of a task are left out of that task.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ecgnet.errors import ECGNetError

TASKS = ("superdiagnostic", "subdiagnostic", "diagnostic", "form", "rhythm", "all")
TRAIN_FOLDS = (1, 2, 3, 4, 5, 6, 7, 8)
VAL_FOLD = 9
TEST_FOLD = 10
SPLITS = {"train": TRAIN_FOLDS, "val": (VAL_FOLD,), "test": (TEST_FOLD,)}

DATA_ENV = "ECGNET_DATA"
AGE_CAP = 90  # PTB-XL codes ages above 89 as 300 (privacy); we map them to 90.
SEX_CODES = {"male": 0.0, "female": 1.0}  # the models' sex feature, as PTB-XL codes it


def data_root(path: str | os.PathLike | None = None) -> Path:
    """The PTB-XL folder: the given path, else $ECGNET_DATA; checked for the two tables."""
    path = path or os.environ.get(DATA_ENV)
    if not path:
        raise ECGNetError(
            f"no PTB-XL folder given: pass --data DIR or set {DATA_ENV}=DIR "
            "(download it with `ecgnet data download DIR`)"
        )
    root = Path(path).expanduser()
    for name in ("ptbxl_database.csv", "scp_statements.csv"):
        if not (root / name).is_file():
            raise ECGNetError(f"{root / name}: missing — {root} is not a PTB-XL folder")
    return root


def read_database(root: Path) -> pd.DataFrame:
    """``ptbxl_database.csv`` indexed by ``ecg_id``, with ``scp_codes`` parsed into dicts."""
    path = Path(root) / "ptbxl_database.csv"
    try:
        db = pd.read_csv(path, index_col="ecg_id")
        db["scp_codes"] = db["scp_codes"].map(ast.literal_eval)
    except (ValueError, SyntaxError, KeyError, pd.errors.ParserError) as e:
        raise ECGNetError(f"{path}: cannot be parsed as the PTB-XL database ({e})") from e
    for col in ("strat_fold", "filename_lr", "age", "sex", "height", "weight"):
        if col not in db.columns:
            raise ECGNetError(f"{path}: column '{col}' is missing")
    return db


def read_statements(root: Path) -> pd.DataFrame:
    """``scp_statements.csv`` indexed by statement code."""
    path = Path(root) / "scp_statements.csv"
    try:
        st = pd.read_csv(path, index_col=0)
    except (ValueError, pd.errors.ParserError) as e:
        raise ECGNetError(f"{path}: cannot be parsed ({e})") from e
    for col in ("diagnostic", "form", "rhythm", "diagnostic_class", "diagnostic_subclass"):
        if col not in st.columns:
            raise ECGNetError(f"{path}: column '{col}' is missing")
    return st


def task_labels(codes: dict, statements: pd.DataFrame, task: str) -> set[str]:
    """The labels of one record (its ``scp_codes`` dict) for one task."""
    if task == "all":
        return {c for c in codes if c in statements.index}
    if task in ("form", "rhythm"):
        return {c for c in codes if c in statements.index and statements.at[c, task] == 1}
    column = {"diagnostic": None, "subdiagnostic": "diagnostic_subclass",
              "superdiagnostic": "diagnostic_class"}[task]
    out = set()
    for c in codes:
        if c in statements.index and statements.at[c, "diagnostic"] == 1:
            label = c if column is None else statements.at[c, column]
            if isinstance(label, str):
                out.add(label)
    return out


@dataclass(frozen=True)
class Labels:
    """One task's multi-hot labels for the records that have at least one."""

    task: str
    classes: list[str]
    ecg_ids: np.ndarray  # (n,) int
    y: np.ndarray  # (n, n_classes) float32, 0/1
    folds: np.ndarray  # (n,) int, 1..10

    def split(self, name: str) -> np.ndarray:
        """Boolean mask of the records in split ``train`` (folds 1–8), ``val`` (9) or ``test`` (10)."""
        if name not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {name!r}")
        return np.isin(self.folds, SPLITS[name])


def make_labels(db: pd.DataFrame, statements: pd.DataFrame, task: str) -> Labels:
    if task not in TASKS:
        raise ECGNetError(f"unknown task '{task}': choose one of {', '.join(TASKS)}")
    per_record = db["scp_codes"].map(lambda codes: task_labels(codes, statements, task))
    per_record = per_record[per_record.map(len) > 0]
    classes = sorted(set().union(*per_record))
    index = {c: i for i, c in enumerate(classes)}
    y = np.zeros((len(per_record), len(classes)), dtype=np.float32)
    for row, labels in enumerate(per_record):
        y[row, [index[c] for c in labels]] = 1
    return Labels(task, classes, per_record.index.to_numpy(), y,
                  db.loc[per_record.index, "strat_fold"].to_numpy())


# --- metadata -------------------------------------------------------------------------------

META_FIELDS = ("age", "sex", "height", "weight")
META_FEATURES = META_FIELDS + tuple(f"{f}_missing" for f in META_FIELDS)


def metadata_features(age, sex, height, weight) -> pd.DataFrame:
    """The models' patient fields from four (n,) arrays in raw units, NaN where unknown — the one encoding that
    training (PTB-XL, manifests) and prediction share: age in years, any age over 89 read as 90 (PTB-XL's 300,
    'over 89', too), sex 0 male / 1 female, height (cm) and weight (kg) with 0 or less unknown (a few PTB-XL records
    carry 0 for unknown), then an is-missing flag per field."""
    meta = pd.DataFrame({"age": np.asarray(age, float), "sex": np.asarray(sex, float),
                         "height": np.asarray(height, float), "weight": np.asarray(weight, float)})
    meta.loc[meta["age"] > 89, "age"] = AGE_CAP
    meta.loc[meta["height"] <= 0, "height"] = np.nan
    meta.loc[meta["weight"] <= 0, "weight"] = np.nan
    for f in META_FIELDS:
        meta[f"{f}_missing"] = meta[f].isna().astype(float)
    return meta


def metadata_table(db: pd.DataFrame) -> pd.DataFrame:
    """PTB-XL's database → :func:`metadata_features`, indexed by ecg_id."""
    meta = metadata_features(*(db[f].to_numpy(float) for f in META_FIELDS))
    meta.index = db.index
    return meta


@dataclass(frozen=True)
class MetadataScaler:
    """Standardises the four fields with statistics of the training folds; missing values become 0
    (the training mean) and their flag says so."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, meta: pd.DataFrame) -> "MetadataScaler":
        values = meta[list(META_FIELDS)]
        return cls(values.mean().to_numpy(), values.std().fillna(1.0).to_numpy())

    def transform(self, meta: pd.DataFrame) -> np.ndarray:
        values = (meta[list(META_FIELDS)].to_numpy() - self.mean) / self.std
        flags = meta[[f"{f}_missing" for f in META_FIELDS]].to_numpy()
        return np.concatenate([np.nan_to_num(values, nan=0.0), flags], axis=1).astype(np.float32)


# PTB-XL's own class names (scp_statements.csv: its 71 statements, their diagnostic subclasses and superclasses),
# so that a name can be known for a real code without the data folder: LAFB and LPFB are two codes, not a typo.
SCP_CODES = frozenset("""1AVB 2AVB 3AVB ABQRS AFIB AFLT ALMI AMI ANEUR ASMI BIGU CLBBB CRBBB DIG EL HVOLT ILBBB ILMI IMI
INJAL INJAS INJIL INJIN INJLA INVT IPLMI IPMI IRBBB ISCAL ISCAN ISCAS ISCIL ISCIN ISCLA ISC_ IVCD LAFB LAO/LAE LMI LNGQT
LOWT LPFB LPR LVH LVOLT NDT NORM NST_ NT_ PAC PACE PMI PRC(S) PSVT PVC QWAVE RAO/RAE RVH SARRH SBRAD SEHYP SR STACH
STD_ STE_ SVARR SVTAC TAB_ TRIGU VCLVH WPW ISCA ISCI LAFB/LPFB STTC _AVB MI CD HYP""".split())

SUPERCLASS_DESCRIPTIONS = {"NORM": "normal ECG", "MI": "myocardial infarction", "STTC": "ST/T change",
                           "CD": "conduction disturbance", "HYP": "hypertrophy"}


def describe_classes(classes: list[str], statements: pd.DataFrame) -> dict[str, str]:
    """Human names for class codes: superclasses, statements, or the subclass's statement names."""
    out = {}
    for c in classes:
        if c in SUPERCLASS_DESCRIPTIONS:
            out[c] = SUPERCLASS_DESCRIPTIONS[c]
        elif c in statements.index:
            out[c] = str(statements.at[c, "description"])
        else:  # a diagnostic subclass: list the statements it groups
            members = statements.index[statements["diagnostic_subclass"] == c]
            out[c] = "; ".join(str(statements.at[m, "description"]) for m in members[:3])
    return out
