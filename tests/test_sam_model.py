"""Loading SAM checkpoints: architecture recognised from the state dict, clear refusals."""

from __future__ import annotations

import pytest
import torch

from napari_medseg.core.errors import MedsegError
from napari_medseg.engines.device import pick_device
from napari_medseg.engines.sam_model import TINY_CONFIG, infer_config, load_sam


@pytest.mark.parametrize("name", ["vit_b", "vit_l", "vit_h"])
def test_published_encoders_are_recognised(name):
    from segment_anything import sam_model_registry

    with torch.device("meta"):  # shapes only, no memory
        state = sam_model_registry[name]().state_dict()
    config = infer_config(state, None)
    assert config.model_type == name
    assert config.img_size == 1024 and config.prompt_dim == 256


def test_tiny_checkpoint_loads_with_its_inferred_configuration(tiny_sam_checkpoint):
    sam = load_sam(tiny_sam_checkpoint, "cpu")
    assert sam.config == TINY_CONFIG
    assert sam.model_type == "custom"
    assert sam.model_id.startswith("custom-")
    state = torch.load(tiny_sam_checkpoint, weights_only=True)
    for key, value in sam.model.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_wrapped_state_dict_is_unwrapped(tiny_sam_checkpoint, tmp_path):
    wrapped = tmp_path / "finetune.pth"
    torch.save({"model": torch.load(tiny_sam_checkpoint, weights_only=True), "epoch": 3}, wrapped)
    assert load_sam(wrapped, "cpu").config == TINY_CONFIG


@pytest.mark.parametrize(
    "content, problem",
    [
        (None, "not found"),
        (b"this is not a checkpoint", "cannot read SAM checkpoint"),
        ({"conv.weight": torch.zeros(3, 3)}, "not a segment-anything checkpoint"),
        ([1, 2, 3], "no state dict"),
    ],
)
def test_bad_checkpoints_are_refused_naming_the_file(tmp_path, content, problem):
    path = tmp_path / "model.pth"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(MedsegError, match=problem) as err:
        load_sam(path, "cpu")
    assert err.value.path == path


def test_truncated_checkpoint_is_refused(tiny_sam_checkpoint, tmp_path):
    path = tmp_path / "cut.pth"
    path.write_bytes(tiny_sam_checkpoint.read_bytes()[:5000])
    with pytest.raises(MedsegError, match="cannot read SAM checkpoint") as err:
        load_sam(path, "cpu")
    assert err.value.path == path


def test_device_choice():
    assert pick_device("cpu") == "cpu"
    assert pick_device() in ("cuda", "mps", "cpu")
    with pytest.raises(MedsegError, match="unknown device"):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(MedsegError, match="CUDA is not available"):
            pick_device("cuda")
