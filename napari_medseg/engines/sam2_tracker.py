"""SAM 2.1's video predictor driven on in-memory slices with on-demand image features.

:class:`Sam2Tracker` is the package's ``SAM2VideoPredictor`` with one change: a frame's image
features come from ``inference_state["features"](frame_idx)`` (our embedding cache, which
encodes a slice only when it is first needed) instead of a tensor of every preprocessed frame
loaded up front. Prompting, memory attention, memory encoding and propagation are the
package's own code. :func:`new_state` builds the inference state ``init_state`` would,
without the frames.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Callable

import sam2.sam2_video_predictor as video_predictor
from sam2.sam2_video_predictor import SAM2VideoPredictor

# Progress goes through the engines' ``progress`` callback (CLI line, panel bar); the
# package's own tqdm bar would write "propagate in video" over the CLI's output.
video_predictor.tqdm = lambda iterable, **_kw: iterable
# Without its optional CUDA extension the package skips filling holes of up to 8 pixels in
# propagated masks, and warns on every run; the reference predictor skips it the same way.
warnings.filterwarnings("ignore", message=r"cannot import name '_C' from 'sam2'")


class Sam2Tracker(SAM2VideoPredictor):
    """``SAM2VideoPredictor`` reading image features from a callback.

    The package stores each frame's mask memory in bfloat16; outside CUDA autocast, memory
    attention then fails on a frame whose memory holds no object pointer (e.g. an object
    prompted on a later slice). The stored memory is handed back as float32 holding the
    same bfloat16-rounded values, so results equal the package's wherever it runs.
    """

    def _run_single_frame_inference(self, *args, **kwargs):
        out, masks = super()._run_single_frame_inference(*args, **kwargs)
        if out["maskmem_features"] is not None:
            out["maskmem_features"] = out["maskmem_features"].float()
        return out, masks

    def _run_memory_encoder(self, *args, **kwargs):
        features, pos = super()._run_memory_encoder(*args, **kwargs)
        return features.float(), pos

    def _get_image_feature(self, inference_state, frame_idx, batch_size):
        backbone_out = inference_state["features"](frame_idx)
        expanded = {
            "backbone_fpn": [
                f.expand(batch_size, -1, -1, -1) for f in backbone_out["backbone_fpn"]
            ],
            "vision_pos_enc": [
                p.expand(batch_size, -1, -1, -1) for p in backbone_out["vision_pos_enc"]
            ],
        }
        return (None, *self._prepare_backbone_features(expanded))


def new_state(
    model: SAM2VideoPredictor, n_frames: int, height: int, width: int, features: Callable
) -> dict:
    """The inference state of ``SAM2VideoPredictor.init_state`` for ``n_frames`` slices of
    ``height`` x ``width`` whose features come from ``features(frame_idx)``."""
    dev = model.device
    return {
        "features": features,
        "num_frames": n_frames,
        "offload_video_to_cpu": False,
        "offload_state_to_cpu": False,
        "video_height": height,
        "video_width": width,
        "device": dev,
        "storage_device": dev,
        "point_inputs_per_obj": {},
        "mask_inputs_per_obj": {},
        "cached_features": {},
        "constants": {},
        "obj_id_to_idx": OrderedDict(),
        "obj_idx_to_id": OrderedDict(),
        "obj_ids": [],
        "output_dict_per_obj": {},
        "temp_output_dict_per_obj": {},
        "frames_tracked_per_obj": {},
    }
