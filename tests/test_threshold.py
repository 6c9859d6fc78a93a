"""Classical pre-segmentation: SUV thresholds on PET, Otsu and fixed values, cleaning."""

from __future__ import annotations

import numpy as np
import pytest

from napari_medseg.core.errors import MedsegError
from napari_medseg.core.geometry import Geometry
from napari_medseg.core.model import Case, Volume
from napari_medseg.engines.base import engine_options, make_engine
from napari_medseg.io.detect import open_dataset
from napari_medseg.io.masks import mask_path, read_mask
from napari_medseg.synthetic.phantom import ellipsoid, torso


def petct_case(pet: np.ndarray, ct: np.ndarray | None = None, spacing=(2.0, 2.0, 2.0)) -> Case:
    geom = Geometry(spacing, (0.0, 0.0, 0.0), np.eye(3))
    ct = np.zeros(pet.shape, np.int16) if ct is None else ct
    return Case(
        "petct",
        [
            Volume.from_array("CT", ct, geom, modality="CT"),
            Volume.from_array("SUV", pet, geom, modality="PET", channel="SUV"),
        ],
    )


def dice(a, b) -> float:
    return 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


def test_suv_threshold_finds_the_phantom_lesion():
    ct, pet, labels = torso((24, 48, 48), seed=3)
    result = make_engine("threshold", method="suv").segment_case(petct_case(pet, ct))
    assert dice(result.mask > 0, labels == 3) > 0.95
    assert result.labelmap.names() == {0: "background", 1: "lesion"}
    assert result.info["image"] == "SUV" and result.info["threshold"] == 2.5


def blob(shape, centre, sigma, peak):
    z, y, x = np.indices(shape)
    d2 = (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2
    return peak * np.exp(-d2 / (2 * sigma**2))


def test_suv41_uses_each_lesions_own_suvmax():
    shape = (20, 40, 40)
    hot, warm = blob(shape, (10, 10, 10), 2.5, 12.0), blob(shape, (10, 28, 28), 2.5, 4.0)
    pet = (0.5 + hot + warm).astype(np.float32)
    mask = (
        make_engine("threshold", method="suv41", min_size=1).segment_case(petct_case(pet)).mask > 0
    )
    left, right = np.zeros(shape, bool), np.zeros(shape, bool)
    left[:, :20, :20], right[:, 20:, 20:] = True, True
    # Each lesion is cut at 41% of its own maximum, not at one global level.
    assert np.array_equal(mask & left, (pet >= 0.41 * pet[left].max()) & left)
    assert np.array_equal(mask & right, (pet >= 0.41 * pet[right].max()) & right)
    absolute = (
        make_engine("threshold", method="suv", min_size=1).segment_case(petct_case(pet)).mask > 0
    )
    assert np.count_nonzero(mask & left) < np.count_nonzero(absolute & left)  # 4.9 > 2.5: tighter
    assert np.count_nonzero(mask & right) > np.count_nonzero(absolute & right)  # 1.6 < 2.5: wider


def test_suv41_does_not_leak_into_a_warm_organ():
    shape = (24, 64, 64)
    liver = ellipsoid(shape, (0, 0, -0.3), (0.9, 0.8, 0.5))
    pet = np.where(liver, 1.8, 0.6).astype(np.float32)
    pet += blob(shape, (12, 32, 34), 1.5, 2.2).astype(np.float32)  # faint lesion at the liver edge
    mask = (
        make_engine("threshold", method="suv41", min_size=1)
        .segment_case(petct_case(pet, spacing=(2, 2, 2)))
        .mask
    )
    assert mask.any()
    assert np.count_nonzero(mask) < 0.2 * np.count_nonzero(liver)  # bounded by the 10 mm margin


def test_min_size_and_hole_filling():
    img = np.zeros((10, 30, 30), np.float32)
    img[2:8, 5:20, 5:20] = 100
    img[4:6, 10:14, 10:14] = 0  # enclosed hole
    img[1, 25, 25] = 100  # speck
    case = Case("mr", [Volume.from_array("T1", img, modality="MR")])
    mask = (
        make_engine("threshold", method="value", threshold=50, min_size=5).segment_case(case).mask
    )
    assert mask[1, 25, 25] == 0
    assert mask[4:6, 10:14, 10:14].all()
    kept = make_engine("threshold", method="value", threshold=50, min_size=1, fill_holes=False)
    raw = kept.segment_case(case).mask
    assert raw[1, 25, 25] == 1 and not raw[4:6, 10:14, 10:14].any()


def test_otsu_on_named_channel_separates_head_from_air():
    from napari_medseg.synthetic.phantom import brain

    images, _ = brain((12, 40, 40), seed=0, channels=2)
    case = Case(
        "b",
        [
            Volume.from_array(n, images[i], modality="MR", channel=n)
            for i, n in enumerate(("T1", "FLAIR"))
        ],
    )
    result = make_engine("threshold", method="otsu", channel="flair").segment_case(case)
    head = ellipsoid((12, 40, 40), (0, 0, 0), (0.9, 0.85, 0.7))
    assert result.info["image"] == "FLAIR"
    assert dice(result.mask > 0, head) > 0.9


def test_clear_errors():
    case = Case("ct", [Volume.from_array("CT", np.zeros((4, 8, 8), np.int16), modality="CT")])
    with pytest.raises(MedsegError, match="no PET image"):
        make_engine("threshold", method="suv").segment_case(case)
    with pytest.raises(MedsegError, match="no image 'PET'"):
        make_engine("threshold", method="otsu", channel="PET").segment_case(case)
    with pytest.raises(MedsegError, match="needs a threshold"):
        make_engine("threshold", method="value")
    with pytest.raises(MedsegError, match="unknown threshold method"):
        make_engine("threshold", method="magic")


def test_presegment_cli_threshold_engine(msd_spleen, tmp_path):
    from napari_medseg.cli import main

    out = tmp_path / "masks"
    args = [
        "presegment",
        str(msd_spleen),
        "--engine",
        "threshold",
        "--method",
        "value",
        "--threshold",
        "45",
        "--channel",
        "CT",
        "--min-size",
        "20",
        "--workers",
        "0",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    dataset = open_dataset(msd_spleen)
    for cid in dataset.case_ids():
        ref = dataset.load_case(cid).reference_image()
        mask = read_mask(mask_path(out, cid), ref).array
        assert mask.shape == ref.shape and mask.any()


def test_suv_threshold_writes_the_datasets_lesion_id(tmp_path):
    """On a dataset whose table says 3 = lesion, the SUV lesion mask uses id 3, not 1 (= liver)."""
    from napari_medseg.engines.threshold import ThresholdEngine
    from napari_medseg.io.detect import open_dataset
    from napari_medseg.synthetic.petct import make_synthetic_petct

    ds = open_dataset(make_synthetic_petct(tmp_path / "d", n_cases=1, shape=(12, 32, 32)))
    case = ds.load_case(ds.case_ids()[0])
    result = ThresholdEngine.from_options(method="suv").segment_case(case)
    truth = case.masks[0].array
    assert set(np.unique(result.mask)) == {0, 3} and result.labelmap[3].name == "lesion"
    assert np.array_equal(result.mask == 3, truth == 3)


@pytest.mark.parametrize("layout", ["brats", "msd"])
def test_presegment_threshold_without_a_method_uses_the_panels_rule(tmp_path, layout):
    """Issue 12 (7): the CLI defaulted to SUV and failed on every BraTS / MSD case."""
    import json

    from napari_medseg.cli import main
    from napari_medseg.engines.threshold import default_method
    from napari_medseg.synthetic.brats import make_brats
    from napari_medseg.synthetic.msd import make_msd
    from napari_medseg.synthetic.petct import make_synthetic_petct

    if layout == "brats":
        root = make_brats(tmp_path / "d", "2023", n_cases=1)
    else:
        root = make_msd(tmp_path / "d", "Task09_Spleen", n_train=1, n_test=0)
    out = tmp_path / "masks"
    args = ["presegment", str(root), "--engine", "threshold", "--workers", "0", "--out", str(out)]
    assert main(args) == 0
    ds = open_dataset(root)
    cid = ds.case_ids()[0]
    summary = json.loads((out / "summary.json").read_text())
    assert cid in summary["done"], summary
    assert read_mask(mask_path(out, cid), ds.load_case(cid).reference_image()).array.any()
    petct = open_dataset(make_synthetic_petct(tmp_path / "p", n_cases=1, shape=(8, 24, 24)))
    assert default_method(petct.load_case(petct.case_ids()[0])) == "suv"
    assert default_method(ds.load_case(cid)) == "otsu"


def test_engine_takes_its_own_options_only():
    assert engine_options("threshold") == (
        "method",
        "threshold",
        "min_size",
        "fill_holes",
        "channel",
    )
    engine = make_engine("threshold", method="value", threshold=45.0, checkpoint="unet.pt")
    assert (engine.method, engine.threshold) == ("value", 45.0)
    with pytest.raises(MedsegError, match="unknown engine 'magic'"):
        make_engine("magic")
