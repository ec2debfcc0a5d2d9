"""SCP-ECG (EN 1064 / ISO 11073-91064), decoded by the ``ecgdatakit`` library (Apache-2.0): Huffman
tables, first/second differences, reference-beat subtraction, statements (sections 8 and 11).

Before the library decodes anything, this module reads the record's own claims: section 0's pointers,
section 3's lead count and sample ranges, section 6's sampling interval; they are checked against the
budget (so a hostile section 3 cannot make the decoder allocate billions of samples). The library's
warnings (a CRC mismatch, a section length disagreeing with section 0) become the record's warnings.
"""

from __future__ import annotations

import struct
import warnings as pywarnings
from pathlib import Path

import numpy as np

from ecgnet.data.limits import ReadLimits
from ecgnet.data.patient import age_from, sex_from
from ecgnet.data.readers.common import assemble, check_file, check_rate, lead_name, units_to_mv
from ecgnet.data.records import ECGRecord
from ecgnet.errors import ECGNetError


def read(path: Path, limits: ReadLimits) -> ECGRecord:
    from ecgdatakit.exceptions import ECGDataKitError
    from ecgdatakit.parsing.parsers.scp_ecg import SCPECGParser

    path = Path(path)
    data = check_file(path, limits)
    check_claims(data, limits, path)
    with pywarnings.catch_warnings(record=True) as caught:
        pywarnings.simplefilter("always")
        try:
            rec = SCPECGParser().parse(path)
        except (ECGDataKitError, ValueError, struct.error, IndexError, KeyError, ZeroDivisionError) as e:
            raise ECGNetError(f"{path}: cannot be read as SCP-ECG ({type(e).__name__}: {e})") from e
    warnings = [f"SCP-ECG: {str(w.message).removeprefix('SCP-ECG: ')}" for w in caught]
    rates, leads = set(), {}
    for lead in rec.leads:
        name = lead_name(lead.label)
        if name is None or name in leads:
            continue
        rates.add(float(lead.sampling_rate))
        try:
            lead = lead.to_physical()  # samples × resolution + offset, in the resolution's unit
        except (ValueError, ECGDataKitError) as e:
            raise ECGNetError(f"{path}: lead {lead.label}: {e}") from e
        leads[name] = np.asarray(lead.samples, np.float64) * units_to_mv(lead.units, path)
    if len(rates) > 1:
        raise ECGNetError(f"{path}: the leads have different sampling rates ({sorted(rates)} Hz)")
    if not rates:
        raise ECGNetError(f"{path}: no standard ECG lead among {[x.label for x in rec.leads]}")
    rate = check_rate(rates.pop(), path)
    statements = [left for left, _right in rec.interpretation.statements if left]
    p = rec.patient
    patient = {"id": p.patient_id, "name": " ".join(x for x in (p.first_name, p.last_name) if x),
               "birth_date": p.birth_date.date().isoformat() if p.birth_date else "",
               "acquired": rec.recording.date.isoformat(" ") if getattr(rec.recording, "date", None) else "",
               "device": _device(getattr(rec.recording, "device", None))}
    return assemble(path, leads, rate, "scp-ecg", statements=statements, patient=patient, warnings=warnings,
                    age=age_from(getattr(p, "age", None)), sex=sex_from(p.sex))


def _device(device) -> str:
    """Section 1's manufacturer and model ("" where the file leaves them out, or writes "unknown")."""
    parts = (str(getattr(device, k, "") or "").strip() for k in ("manufacturer", "model"))
    return " ".join(x for x in parts if x and x.lower() != "unknown")


def check_claims(data: bytes, limits: ReadLimits, path: Path) -> None:
    """Section 3's lead count and longest lead, and section 6's rate, against ``limits`` (nothing decoded)."""
    def u16(pos):
        return int.from_bytes(data[pos:pos + 2], "little")

    def u32(pos):
        return int.from_bytes(data[pos:pos + 4], "little")

    if len(data) < 22 or u16(8) != 0:
        raise ECGNetError(f"{path}: not an SCP-ECG record (no section 0 at byte 7)")
    if u32(2) > len(data):
        raise ECGNetError(f"{path}: SCP-ECG record declares {u32(2)} bytes, the file holds {len(data)}: truncated")
    sec0_len = u32(10)
    pointers = {}
    for pos in range(6 + 16, min(6 + sec0_len, len(data)) - 9, 10):
        pointers[u16(pos)] = (u32(pos + 2), u32(pos + 6) - 1)
    length3, at3 = pointers.get(3, (0, -1))
    if not length3 or at3 < 0 or at3 + 18 > len(data):
        raise ECGNetError(f"{path}: SCP-ECG without a lead definition (section 3)")
    n_leads = data[at3 + 16]
    limits.check_signals(n_leads, path)
    samples = 0
    for i in range(n_leads):
        pos = at3 + 18 + 9 * i
        if pos + 9 > len(data):
            raise ECGNetError(f"{path}: SCP-ECG section 3 declares {n_leads} leads, truncated at lead {i + 1}")
        samples = max(samples, u32(pos + 4) - u32(pos) + 1)
    rate = 0.0
    length6, at6 = pointers.get(6, (0, -1))
    if length6 and 0 <= at6 and at6 + 20 <= len(data) and u16(at6 + 18):
        rate = 1e6 / u16(at6 + 18)  # sample interval in µs
    limits.check_samples(samples, n_leads, rate, path)
