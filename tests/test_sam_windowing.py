"""Windowing medical images of any dtype into SAM's 8-bit three-channel input."""

from __future__ import annotations

import numpy as np
import pytest

from napari_medseg.core.errors import MedsegError
from napari_medseg.core.model import Volume
from napari_medseg.engines.windowing import (
    ChannelSpec,
    default_mapping,
    parse_mapping,
    resolve_window,
    sam_stack,
    source_channels,
    to_uint8,
)
from napari_medseg.synthetic.phantom import brain, torso


def test_pet_ct_mapping_windows_each_modality():
    ct, pet, _ = torso((4, 32, 32))
    sources = source_channels(
        [
            Volume.from_array("CT", ct, modality="CT"),
            Volume.from_array("SUV", pet, modality="PET", channel="SUV"),
        ]
    )
    mapping = default_mapping(sources)
    assert [m.source for m in mapping] == ["CT", "CT", "SUV"]
    stack, used = sam_stack(sources, mapping)
    assert stack.shape == (4, 32, 32, 3) and stack.dtype == np.uint8
    assert used[0]["limits"] == [-160.0, 240.0] and used[2]["limits"] == [0.0, 6.0]
    np.testing.assert_array_equal(stack[..., 0], to_uint8(ct, -160, 240))
    assert stack[..., 2].max() == 255  # the lesion's SUV 8 saturates


def test_suv_channel_named_ct_is_recognised_by_its_range():
    _, pet, _ = torso((4, 32, 32))
    src = source_channels([Volume.from_array("img_0001", pet, modality="CT")])[0]
    assert resolve_window(src) == (0.0, 6.0)


def test_mri_channels_use_percentiles_and_explicit_windows():
    images, _ = brain((4, 24, 24), channels=4)
    vols = [
        Volume.from_array(n, images[i] * 1000, modality="MR", channel=n)
        for i, n in enumerate(["FLAIR", "T1w", "t1gd", "T2w"])
    ]
    sources = source_channels(vols)
    assert [m.source for m in default_mapping(sources)] == ["FLAIR", "T1w", "t1gd"]
    lo, hi = resolve_window(sources[0])
    nz = images[0][images[0] != 0] * 1000
    assert lo == pytest.approx(np.percentile(nz, 0.5), rel=1e-3)
    assert hi == pytest.approx(np.percentile(nz, 99.5), rel=1e-3)
    stack, _ = sam_stack(sources, parse_mapping("FLAIR,t1gd:0:2000,T2w:pct"))
    assert stack.shape == (4, 24, 24, 3)


def test_rgb_and_2d_images():
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3)).astype(np.uint8)
    sources = source_channels([Volume.from_array("photo", rgb, rgb=True)])
    assert [s.name for s in sources] == ["photo[R]", "photo[G]", "photo[B]"]
    stack, _ = sam_stack(sources, default_mapping(sources))
    assert stack.shape == (1, 20, 30, 3)
    np.testing.assert_array_equal(stack[0], to_uint8(rgb, 0, 255))


def test_mapping_errors_are_clear():
    a = Volume.from_array("A", np.zeros((2, 8, 8), np.float32))
    b = Volume.from_array("B", np.zeros((2, 9, 9), np.float32))
    sources = source_channels([a, b])
    with pytest.raises(MedsegError, match="different grids"):
        sam_stack(sources, [ChannelSpec("A"), ChannelSpec("A"), ChannelSpec("B")])
    with pytest.raises(MedsegError, match="no channel 'C'"):
        sam_stack(sources, [ChannelSpec("C")] * 3)
    with pytest.raises(MedsegError, match="unknown window"):
        sam_stack(sources, [ChannelSpec("A", "bone")] * 3)
    with pytest.raises(MedsegError, match="three channel names"):
        parse_mapping("A,B")
