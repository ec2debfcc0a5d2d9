"""The page of the clinical report, in millimetres: A4 landscape, a 3×4 lead layout plus a rhythm strip on a
true millimetre grid at 25 mm/s and 10 mm/mV.

Everything is placed in millimetres from the page's bottom-left corner; :mod:`ecgnet.report.pdf` makes a
figure of exactly ``PAGE_MM`` (inches = mm / 25.4) and axes whose data units are millimetres, so a trace
drawn at ``MM_PER_S`` and ``MM_PER_MV`` is that size on paper (printed at 100 %, no "fit to page").
"""

from __future__ import annotations

from dataclasses import dataclass

from ecgnet.data.leads import display

PAGE_MM = (297.0, 210.0)  # A4 landscape
MM_PER_S = 25.0  # paper speed
MM_PER_MV = 10.0  # gain
MINOR_MM, MAJOR_MM = 1.0, 5.0

# The grid: 4 rows (3 of the 12-lead layout, then the rhythm strip) of ROW_MM each.
GRID_X, GRID_Y = 16.0, 15.0  # its bottom-left corner on the page
CALIBRATION_MM = 15.0  # room at the left of every row for the 1 mV calibration pulse
SECONDS_SHOWN = 10.0
GRID_W = CALIBRATION_MM + SECONDS_SHOWN * MM_PER_S  # 265 mm
ROWS, ROW_MM = 4, 32.0
GRID_H = ROWS * ROW_MM  # 128 mm
PULSE_X, PULSE_S, PULSE_MV = 4.0, 0.2, 1.0  # the calibration pulse: 1 mV for 0.2 s (10 mm × 5 mm)

# 3 rows × 4 columns; each column shows its own 2.5 s of the record (the usual simultaneous layout); a record
# shorter than 10 s is shared out the same way, a quarter of it per column, so that no lead is left blank.
LAYOUT = (("I", "AVR", "V1", "V4"), ("II", "AVL", "V2", "V5"), ("III", "AVF", "V3", "V6"))
RHYTHM_LEAD = "II"
COLUMN_S = SECONDS_SHOWN / len(LAYOUT[0])  # 2.5 s


@dataclass(frozen=True)
class Trace:
    """One lead's piece of the record drawn at one place of the grid."""

    lead: str
    start_s: float  # where in the record it starts
    seconds: float
    x_mm: float  # where on the grid it starts (grid coordinates, mm)
    baseline_mm: float  # its zero line (grid coordinates, mm)
    rhythm: bool = False  # the rhythm strip (the whole width), not one of the 12 columns


def row_baseline(row: int) -> float:
    """The zero line of row ``row`` (0 = top) in grid millimetres: a little below the row's middle, since
    QRS complexes reach further up than down in most leads."""
    return GRID_H - (row + 0.55) * ROW_MM


def column_seconds(record_seconds: float = SECONDS_SHOWN) -> float:
    """How much of the record one column shows: 2.5 s, or a quarter of a record shorter than 10 s."""
    return min(COLUMN_S, record_seconds / len(LAYOUT[0]))


def traces(record_seconds: float = SECONDS_SHOWN) -> list[Trace]:
    """The 12 pieces of the 3×4 layout and the rhythm strip of a record of ``record_seconds``, in drawing
    order; each column starts where it does on a 10 s record, at 25 mm/s, whatever its piece's length."""
    span = column_seconds(record_seconds)
    out = []
    for r, row in enumerate(LAYOUT):
        for c, lead in enumerate(row):
            out.append(Trace(lead, c * span, span, CALIBRATION_MM + c * COLUMN_S * MM_PER_S, row_baseline(r)))
    out.append(Trace(RHYTHM_LEAD, 0.0, min(SECONDS_SHOWN, record_seconds), CALIBRATION_MM, row_baseline(len(LAYOUT)),
                     rhythm=True))
    return out


display_name = display  # aVR, aVL, aVF as ECG papers write them
