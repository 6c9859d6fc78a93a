"""Core model pieces: labelmaps, atomic writes, mask I/O refusals, lazy loading."""

import gzip

import numpy as np
import pytest

from napari_medseg.core.atomic import atomic_path, check_output_dir
from napari_medseg.core.errors import MedsegError, ReadError, WriteError
from napari_medseg.core.labelmap import LabelMap, default_color
from napari_medseg.io import open_dataset
from napari_medseg.io.masks import read_mask, write_mask


def test_labelmap_from_names_adds_background_and_distinct_colours():
    lm = LabelMap.from_names({1: "liver", 2: "spleen"})
    assert lm.names() == {0: "background", 1: "liver", 2: "spleen"}
    colors = [default_color(i) for i in range(1, 60)]
    assert len(set(colors)) == len(colors)
    assert lm.ensure([5]).names()[5] == "label_5"
    assert LabelMap.from_json(lm.to_json()) == lm


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.nii.gz"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with atomic_path(target) as tmp:
        assert tmp.name.endswith(".nii.gz")
        tmp.write_bytes(b"done")
    assert target.read_bytes() == b"done"


def test_output_inside_source_is_refused(msd_spleen, tmp_path):
    with pytest.raises(WriteError, match="inside the source"):
        check_output_dir(msd_spleen / "curated", msd_spleen)
    assert check_output_dir(tmp_path / "out", msd_spleen) == tmp_path / "out"


def test_listing_reads_no_voxels(msd_spleen):
    ds = open_dataset(msd_spleen)
    case = ds.load_case(ds.case_ids()[0])
    assert not any(v.loaded for v in case.images + case.masks)
    assert case.images[0].shape == (16, 48, 48)


def test_truncated_file_names_the_file_and_other_cases_load(msd_spleen):
    bad = msd_spleen / "imagesTr" / "spleen_1.nii.gz"
    raw = gzip.decompress(bad.read_bytes())
    bad.write_bytes(gzip.compress(raw[: len(raw) // 2]))
    ds = open_dataset(msd_spleen)
    with pytest.raises(ReadError) as err:
        _ = ds.load_case("spleen_1").images[0].array
    assert "spleen_1.nii.gz" in str(err.value)
    assert ds.load_case("spleen_2").images[0].array.shape == (16, 48, 48)


def test_mask_with_wrong_shape_is_refused(msd_spleen, tmp_path):
    case = open_dataset(msd_spleen).load_case("spleen_1")
    with pytest.raises(WriteError, match="differs from image shape"):
        write_mask(case.images[0], np.zeros((3, 4, 5), np.uint8), tmp_path / "x.nii.gz")
    other = open_dataset(msd_spleen).load_case("spleen_2")
    path = write_mask(other.images[0], other.masks[0].array, tmp_path / "ok.nii.gz")
    assert read_mask(path, case.images[0]).array.sum() == other.masks[0].array.sum()


def test_mask_on_another_grid_is_refused(msd_spleen, tmp_path):
    import nibabel as nib

    case = open_dataset(msd_spleen).load_case("spleen_1")
    img = nib.load(msd_spleen / "labelsTr" / "spleen_1.nii.gz")
    aff = img.affine.copy()
    aff[0, 3] += 25.0
    nib.save(nib.Nifti1Image(np.asanyarray(img.dataobj), aff), tmp_path / "moved.nii.gz")
    with pytest.raises(ReadError, match="not on the same grid"):
        read_mask(tmp_path / "moved.nii.gz", case.images[0])


def test_errors_are_medseg_errors():
    assert issubclass(ReadError, MedsegError)


def test_atomic_outputs_get_umask_permissions(tmp_path):
    """Not mkstemp's private 0600: reviewers sharing an output folder must read each other's files."""
    from napari_medseg.core import atomic

    with atomic_path(tmp_path / "a.json") as tmp:
        tmp.write_text("{}")
    with atomic.atomic_dir(tmp_path / "export") as tmp:
        (tmp / "x.txt").write_text("x")
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o666 & ~atomic._UMASK
    assert (tmp_path / "export").stat().st_mode & 0o777 == 0o777 & ~atomic._UMASK
