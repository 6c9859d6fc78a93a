"""PET SUV (body weight) from the radiopharmaceutical tags of a PET series' headers."""

from __future__ import annotations

import math
from datetime import datetime, timedelta


def _dicom_datetime(date: str, time: str) -> datetime | None:
    time = (time or "").replace(":", "").strip()
    date = (date or "").strip()
    if not time:
        return None
    whole, _, frac = time.partition(".")
    whole = whole.ljust(6, "0")
    try:
        base = datetime.strptime((date or "19000101") + whole[:6], "%Y%m%d%H%M%S")
    except ValueError:
        return None
    return base + timedelta(seconds=float("0." + frac) if frac else 0.0)


def _parse_dt(value: str) -> datetime | None:
    value = (value or "").split("&")[0].split("+")[0].split("-")[0]
    return _dicom_datetime(value[:8], value[8:]) if len(value) >= 10 else None


def suv_factor(hdrs) -> tuple[float | None, str]:
    """Body-weight SUV factor (SUV = Bq/ml x factor) from the PET headers, or (None, reason).

    SUVbw = activity x weight[g] / dose[Bq], with the injected dose decayed from the
    injection time to the series start when the images are decay-corrected to START.
    """
    h = hdrs[0]
    units = str(h.get("Units", "")).upper()
    if units == "GML":
        return 1.0, "stored as SUV"
    if units != "BQML":
        return None, f"Units {units or 'missing'} (SUV needs BQML)"
    weight = float(h.get("PatientWeight", 0) or 0)
    seq = h.get("RadiopharmaceuticalInformationSequence")
    info = seq[0] if seq else None
    if not weight or info is None:
        return None, "PatientWeight or RadiopharmaceuticalInformationSequence missing"
    dose = float(info.get("RadionuclideTotalDose", 0) or 0)
    half_life = float(info.get("RadionuclideHalfLife", 0) or 0)
    if dose <= 0 or half_life <= 0:
        return None, "RadionuclideTotalDose or RadionuclideHalfLife missing"
    correction = str(h.get("DecayCorrection", "START")).upper()
    if correction == "ADMIN":
        return weight * 1000.0 / dose, "decay-corrected to administration"
    if correction != "START":
        return None, f"DecayCorrection {correction} is not supported"
    date = str(h.get("SeriesDate", "") or h.get("StudyDate", "") or "")
    scan = _dicom_datetime(date, str(h.get("SeriesTime", "")))
    acq = [
        _dicom_datetime(
            str(x.get("AcquisitionDate", "") or date), str(x.get("AcquisitionTime", ""))
        )
        for x in hdrs
    ]
    acq = [a for a in acq if a is not None]
    if acq and (
        scan is None or scan > min(acq)
    ):  # series re-created after the scan: use first acquisition
        scan = min(acq)
    inj = _parse_dt(str(info.get("RadiopharmaceuticalStartDateTime", "") or ""))
    if inj is None:
        inj = _dicom_datetime(date, str(info.get("RadiopharmaceuticalStartTime", "")))
        if inj is not None and scan is not None and inj > scan:
            inj -= timedelta(days=1)  # injected before midnight, scanned after
    if scan is None or inj is None:
        return None, "SeriesTime or RadiopharmaceuticalStartTime missing"
    elapsed = (scan - inj).total_seconds()
    decayed = dose * math.exp(-math.log(2) * elapsed / half_life)
    return weight * 1000.0 / decayed, f"SUVbw, dose decayed over {elapsed:.0f} s"
