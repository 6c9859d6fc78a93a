"""U-Net engine: published state-dict layout, checkpoints, batched inference, masks on the grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_medseg.core.errors import ReadError
from napari_medseg.core.labelmap import LabelMap
from napari_medseg.core.model import Case, Volume
from napari_medseg.engines.base import make_engine
from napari_medseg.engines.unet import normalise, predict_volume
from napari_medseg.engines.unet_model import UNet, UNetConfig, load_checkpoint, save_checkpoint
from napari_medseg.io.detect import open_dataset
from napari_medseg.io.masks import mask_path, read_mask


def published_keys() -> dict[str, tuple[int, ...]]:
    """Key names and shapes of brain-segmentation-pytorch's UNet(3, 1, 32) state dict."""
    keys: dict[str, tuple[int, ...]] = {}
    widths = {
        "enc1": (3, 32),
        "enc2": (32, 64),
        "enc3": (64, 128),
        "enc4": (128, 256),
        "bottleneck": (256, 512),
        "dec4": (512, 256),
        "dec3": (256, 128),
        "dec2": (128, 64),
        "dec1": (64, 32),
    }
    modules = {
        "enc1": "encoder1",
        "enc2": "encoder2",
        "enc3": "encoder3",
        "enc4": "encoder4",
        "bottleneck": "bottleneck",
        "dec4": "decoder4",
        "dec3": "decoder3",
        "dec2": "decoder2",
        "dec1": "decoder1",
    }
    for block, (c_in, c_out) in widths.items():
        m = modules[block]
        keys[f"{m}.{block}conv1.weight"] = (c_out, c_in, 3, 3)
        keys[f"{m}.{block}conv2.weight"] = (c_out, c_out, 3, 3)
        for norm in ("norm1", "norm2"):
            for p in ("weight", "bias", "running_mean", "running_var"):
                keys[f"{m}.{block}{norm}.{p}"] = (c_out,)
            keys[f"{m}.{block}{norm}.num_batches_tracked"] = ()
    for i, c in zip((4, 3, 2, 1), (256, 128, 64, 32), strict=True):
        keys[f"upconv{i}.weight"] = (2 * c, c, 2, 2)
        keys[f"upconv{i}.bias"] = (c,)
    keys["conv.weight"], keys["conv.bias"] = (1, 32, 1, 1), (1,)
    return keys


def test_state_dict_matches_published_layout():
    state = UNet(in_channels=3, out_channels=1, init_features=32).state_dict()
    expected = published_keys()
    assert sorted(state) == sorted(expected)
    assert {k: tuple(v.shape) for k, v in state.items()} == expected


@pytest.fixture
def published_checkpoint(tmp_path):
    """A bare state dict as the published ``unet.pt`` stores it (random weights)."""
    torch.manual_seed(0)
    state = {k: torch.randn(s) if s else torch.tensor(0) for k, s in published_keys().items()}
    for k in state:
        if k.endswith("running_var"):
            state[k] = state[k].abs() + 0.5
    path = tmp_path / "unet.pt"
    torch.save(state, path)
    return path, state


def test_bare_published_state_dict_loads_with_lgg_config(published_checkpoint):
    path, state = published_checkpoint
    model, config = load_checkpoint(path)
    assert (config.in_channels, config.out_channels, config.init_features) == (3, 1, 32)
    assert config.channels == ["pre-contrast", "FLAIR", "post-contrast"]
    assert config.labelmap.names() == {0: "background", 1: "FLAIR abnormality"}
    assert (
        config.crop == {"fraction": 0.1, "size": 256} and config.postprocess == "largest_component"
    )
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())


def test_data_parallel_prefix_is_accepted(published_checkpoint, tmp_path):
    _, state = published_checkpoint
    path = tmp_path / "dp.pt"
    torch.save({f"module.{k}": v for k, v in state.items()}, path)
    model, config = load_checkpoint(path)
    assert config.init_features == 32 and torch.equal(model.conv.weight, state["conv.weight"])


def test_published_model_presegments_lgg_case_on_its_grid(published_checkpoint, tmp_path):
    from napari_medseg.synthetic.lgg import make_lgg

    dataset = open_dataset(make_lgg(tmp_path / "lgg", n_cases=1, shape=(5, 40, 40)))
    case = dataset.load_case(dataset.case_ids()[0])
    engine = make_engine("unet", checkpoint=published_checkpoint[0], device="cpu", batch_size=2)
    calls = []
    result = engine.segment_case(case, lambda d, t: calls.append((d, t)))
    assert result.mask.shape == (5, 40, 40)  # 40 is padded to 48 for the network, then cropped
    assert set(np.unique(result.mask)) <= {0, 1}
    assert result.labelmap[1].name == "FLAIR abnormality"
    assert result.info["inputs"] == ["pre-contrast", "FLAIR", "post-contrast"]
    assert calls[-1][0] == calls[-1][1]


def test_content_crop_follows_published_preprocessing_and_restores_the_grid():
    from napari_medseg.engines.unet import ContentCrop

    x = np.zeros((3, 6, 40, 60), np.float32)
    x[:, 1:5, 5:25, 10:50] = 100.0  # "brain": 20 x 40 in-plane
    x[0, 0, 0, 0] = 5.0  # under 10% of the maximum: zeroed, outside the crop
    crop, zeroed = ContentCrop.fit(x, 0.1, 64)
    assert zeroed[0, 0, 0, 0] == 0
    assert crop.box == (slice(1, 5), slice(5, 25), slice(10, 50))
    assert crop.pad == ((10, 10), (0, 0))  # padded square before resizing
    assert crop.image(zeroed).shape == (3, 4, 64, 64)
    mask = np.zeros((6, 40, 60), np.uint8)
    mask[2:4, 10:20, 20:40] = 1
    small = crop.mask(mask)
    assert small.shape == (4, 64, 64) and set(np.unique(small)) == {0, 1}
    np.testing.assert_array_equal(crop.restore(small), mask)


def test_largest_component_post_processing():
    from napari_medseg.engines.unet import largest_component

    mask = np.zeros((4, 20, 20), np.uint8)
    mask[1:3, 2:8, 2:8] = 1
    mask[1, 15, 15] = 1
    kept = largest_component(mask)
    assert kept[1, 15, 15] == 0 and kept[1:3, 2:8, 2:8].all()


def test_batched_inference_equals_one_slice_at_a_time():
    torch.manual_seed(1)
    model = UNet(2, 3, 4).eval()
    x = np.random.default_rng(0).normal(size=(2, 7, 20, 36)).astype(np.float32)
    batched = predict_volume(model, x, batch_size=4)
    single = np.stack([predict_volume(model, x[:, z : z + 1], batch_size=1)[0] for z in range(7)])
    assert batched.shape == (7, 20, 36)
    np.testing.assert_array_equal(batched, single)


def test_multiclass_checkpoint_on_msd_brain(msd_brain, tmp_path):
    dataset = open_dataset(msd_brain)
    case = dataset.load_case(dataset.case_ids()[0])
    labels = case.labelmap
    config = UNetConfig(4, len(labels), 4, labels.to_json(), ["FLAIR", "T1w", "t1gd", "T2w"])
    ckpt = save_checkpoint(UNet(4, len(labels), 4), config, tmp_path / "brain.pt")
    result = make_engine("unet", checkpoint=ckpt).segment_case(case)
    assert result.mask.shape == case.reference_image().shape[:3]
    assert set(np.unique(result.mask)) <= set(labels.ids)
    assert result.labelmap == labels


def test_channels_matched_by_name_whatever_the_case_order(tmp_path):
    config = UNetConfig(2, 1, 4, LabelMap.from_names({1: "lesion"}).to_json(), ["T2", "ADC"])
    ckpt = save_checkpoint(UNet(2, 1, 4), config, tmp_path / "m.pt")
    rng = np.random.default_rng(0)
    adc, t2 = (rng.random((3, 16, 16)).astype(np.float32) for _ in range(2))
    case = Case("p1", [Volume.from_array("ADC", adc), Volume.from_array("T2", t2)])
    engine = make_engine("unet", checkpoint=ckpt)
    assert engine.segment_case(case).info["inputs"] == ["T2", "ADC"]
    one = Case("p2", [Volume.from_array("T2", t2)])
    with pytest.raises(Exception, match="needs T2, ADC"):
        engine.segment_case(one)


def test_two_dimensional_case_gives_two_dimensional_mask(tmp_path):
    config = UNetConfig(1, 1, 4, LabelMap.from_names({1: "nodule"}).to_json(), ["image"])
    ckpt = save_checkpoint(UNet(1, 1, 4), config, tmp_path / "m.pt")
    case = Case("img", [Volume.from_array("image", np.zeros((28, 28), np.float32))])
    assert make_engine("unet", checkpoint=ckpt).segment_case(case).mask.shape == (28, 28)


def test_normalisation_matches_published_recipe():
    x = np.random.default_rng(0).gamma(2.0, 50.0, size=(3, 4, 8, 8)).astype(np.float32)
    out = normalise(x, {"method": "percentile_zscore", "lower": 10, "upper": 99, "joint": True})
    lo, hi = np.percentile(x, (10, 99))
    clipped = np.clip(x, lo, hi)
    ref = (clipped - clipped.mean(axis=(1, 2, 3), keepdims=True)) / clipped.std(
        axis=(1, 2, 3), keepdims=True
    )
    np.testing.assert_allclose(out, ref, atol=1e-4)


@pytest.mark.parametrize("content", [b"not a checkpoint", b""])
def test_corrupt_checkpoint_is_a_clear_error(tmp_path, content):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(content)
    with pytest.raises(ReadError, match="bad.pt"):
        make_engine("unet", checkpoint=bad)


def test_unknown_weights_and_missing_file_are_clear_errors(tmp_path):
    other = tmp_path / "other.pt"
    torch.save({"fc.weight": torch.zeros(2, 2)}, other)
    with pytest.raises(ReadError, match="other.pt.*not a U-Net checkpoint"):
        load_checkpoint(other)
    wrong = tmp_path / "wrong.pt"
    state = UNet(3, 1, 8).state_dict()
    state["conv.weight"] = torch.zeros(1, 9, 1, 1)
    torch.save(state, wrong)
    with pytest.raises(ReadError, match="wrong.pt.*do not fit"):
        load_checkpoint(wrong)
    with pytest.raises(ReadError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")


def test_presegment_cli_with_unet_writes_masks_on_source_grid(msd_spleen, tmp_path):
    from napari_medseg.cli import main

    config = UNetConfig(1, 1, 4, LabelMap.from_names({1: "spleen"}).to_json(), ["CT"])
    ckpt = save_checkpoint(UNet(1, 1, 4), config, tmp_path / "m.pt")
    out = tmp_path / "masks"
    rc = main(
        [
            "presegment",
            str(msd_spleen),
            "--engine",
            "unet",
            "--checkpoint",
            str(ckpt),
            "--device",
            "cpu",
            "--workers",
            "0",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    dataset = open_dataset(msd_spleen)
    for cid in dataset.case_ids():
        ref = dataset.load_case(cid).reference_image()
        assert read_mask(mask_path(out, cid), ref).array.shape == ref.shape
