"""Synthetic PET/CT: the TCIA FDG-PET-CT-Lesions NIfTI layout, and our own synthetic-petct layout.

``make_petct_lesions`` mimics the TCIA release: CT on a finer grid than PET, CTres = CT
resampled onto the PET grid (padded with -1024), SUV and PET activity, SEG on the PET grid,
LAS-oriented files as dicom2nifti writes them, folder names with spaces, and a metadata CSV.
``make_synthetic_petct`` writes the simpler layout the plugin's sample PET/CT case uses.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np

from napari_medseg.synthetic.msd import write_nifti
from napari_medseg.synthetic.phantom import torso

SYNTHETIC_GENERATOR = "napari-medseg synthetic-petct"
SYNTHETIC_LABELS = {"1": "liver", "2": "spleen", "3": "lesion"}
STUDY_DESCRIPTIONS = (
    "PET-CT Ganzkoerper  primaer mit KM",
    "PET-CT Ganzkoerper  nativ",
)  # double spaces, as in TCIA
METADATA_CSV = "Clinical Metadata FDG PET_CT Lesions.csv"


def write_las_nifti(path: Path, display: np.ndarray, spacing, origin_lps, dtype) -> None:
    """Write a display-order (z, y, x) array as an LAS NIfTI (dicom2nifti's orientation).

    ``origin_lps`` is the LPS position (x, y, z) of display voxel (0, 0, 0).
    """
    sz, sy, sx = spacing
    ny = display.shape[1]
    data = np.ascontiguousarray(display[:, ::-1, :].transpose(2, 1, 0))  # i -> L, j -> A, k -> S
    affine = np.diag([-sx, sy, sz, 1.0])
    x, y, z = origin_lps
    affine[:3, 3] = (-x, -(y + (ny - 1) * sy), z)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = nib.Nifti1Image(data.astype(dtype), affine)
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    nib.save(img, str(path))


def resample(
    src: np.ndarray, src_spacing, src_origin, dst_shape, dst_spacing, dst_origin, cval
) -> np.ndarray:
    """Linear resampling between axis-aligned display grids (spacing/origin in z, y, x order)."""
    from scipy.ndimage import map_coordinates

    axes = [
        (dst_origin[a] + np.arange(dst_shape[a]) * dst_spacing[a] - src_origin[a]) / src_spacing[a]
        for a in range(3)
    ]
    coords = np.meshgrid(*axes, indexing="ij")
    return map_coordinates(src.astype(np.float32), coords, order=1, cval=cval)


def make_petct_lesions(
    root: str | Path,
    n_patients: int = 2,
    studies_per_patient=(2, 1),
    pet_shape=(10, 20, 20),
    pet_spacing=(4.0, 5.0, 5.0),
    ct_factor: int = 2,
    seed: int = 0,
    weight_kg: float = 75.0,
    dose_bq: float = 3.0e8,
) -> Path:
    """Write ``<root>/PETCT_<10hex>/<MM-DD-YYYY>-NA-<desc>-<5 digits>/{CT,...,SEG}.nii.gz``."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    pet_origin = (0.0, 0.0, 0.0)  # z, y, x of display voxel 0 (LPS z, y, x)
    ct_spacing = tuple(s / ct_factor for s in pet_spacing)
    ct_shape = tuple(n * ct_factor for n in pet_shape)
    # Both grids cover the same box: the fine grid starts inside the coarse grid's first voxel.
    ct_origin = tuple(
        o - s / 2 + c / 2 for o, s, c in zip(pet_origin, pet_spacing, ct_spacing, strict=True)
    )
    rows = []
    k = 0
    for p in range(n_patients):
        patient = f"PETCT_{rng.integers(16**10):010x}"
        for s in range(studies_per_patient[p % len(studies_per_patient)]):
            month, day, year = 1 + (k % 12), 3 + k, 2001 + k
            desc = STUDY_DESCRIPTIONS[s % len(STUDY_DESCRIPTIONS)]
            study = root / patient / f"{month:02d}-{day:02d}-{year}-NA-{desc}-{10445 + 37 * k:05d}"
            ct, _, _ = torso(ct_shape, seed=seed + k)
            _, suv, labels = torso(pet_shape, seed=seed + k)
            ctres = resample(
                ct, ct_spacing, ct_origin, pet_shape, pet_spacing, pet_origin, cval=-1024
            )
            lps = lambda o: (o[2], o[1], o[0])  # noqa: E731 - (z, y, x) -> LPS (x, y, z)
            write_las_nifti(study / "CT.nii.gz", ct, ct_spacing, lps(ct_origin), np.int16)
            write_las_nifti(study / "CTres.nii.gz", ctres, pet_spacing, lps(pet_origin), np.float32)
            write_las_nifti(study / "SUV.nii.gz", suv, pet_spacing, lps(pet_origin), np.float32)
            activity = suv * dose_bq / (weight_kg * 1000.0)  # Bq/ml, decay-corrected dose
            write_las_nifti(
                study / "PET.nii.gz", activity, pet_spacing, lps(pet_origin), np.float32
            )
            write_las_nifti(
                study / "SEG.nii.gz",
                (labels == 3).astype(np.uint8),
                pet_spacing,
                lps(pet_origin),
                np.uint8,
            )
            diagnosis = ("MELANOMA", "LYMPHOMA", "LUNG_CANCER", "NEGATIVE")[k % 4]
            for modality in ("CT", "PT", "SEG"):
                rows.append(
                    {
                        "Subject ID": patient,
                        "Study UID": f"1.2.826.0.{k}",
                        "Study Description": desc,
                        "Study Date": f"{month}/{day}/{year}",
                        "Modality": modality,
                        "diagnosis": diagnosis,
                        "age": f"0{50 + k}Y",
                        "sex": "FM"[k % 2],
                        "File Location": f"./FDG-PET-CT-Lesions/{patient}",
                    }
                )
            k += 1
    with open(root / METADATA_CSV, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


def make_synthetic_petct(
    root: str | Path, n_cases: int = 2, shape=(20, 40, 40), seed: int = 0, spacing=(3.0, 2.5, 2.5)
) -> Path:
    """Write ``<root>/synthetic.json`` and ``<root>/<case>/{ct,suv,seg}.nii.gz`` (one grid each)."""
    root = Path(root)
    cases = []
    for i in range(n_cases):
        case = f"synpet_{i:03d}"
        ct, suv, labels = torso(shape, seed=seed + i)
        write_nifti(root / case / "ct.nii.gz", ct, spacing, np.int16)
        write_nifti(root / case / "suv.nii.gz", suv, spacing, np.float32)
        write_nifti(root / case / "seg.nii.gz", labels, spacing, np.uint8)
        cases.append(case)
    meta = {
        "generator": SYNTHETIC_GENERATOR,
        "version": 1,
        "cases": cases,
        "labels": SYNTHETIC_LABELS,
    }
    (root / "synthetic.json").write_text(json.dumps(meta, indent=2))
    return root
