"""SAM 2.1 / MedSAM2 assisted segmentation: on-demand slice features, prompts on any slice,
and 3D propagation with the video predictor's memory.

:class:`Sam2Session` holds one case's 8-bit input stack (the same windows and cache keys as
SAM 1, see :mod:`napari_medseg.engines.sam`). A slice is encoded only when something needs
it (a prompt on it, propagation reaching it, or :meth:`Sam2Session.embed`), and its features
are kept in the content-keyed disk cache. Slices are preprocessed as the package's
``SAM2ImagePredictor`` does (resize to the model's square input, ImageNet mean and std),
which is also MedSAM2's documented preprocessing at 512 px. A prompt on one slice is decoded
by ``SAM2ImagePredictor``; :class:`Sam2Track` drives ``SAM2VideoPredictor`` (see
:mod:`napari_medseg.engines.sam2_tracker`) to follow several objects forward and backward
from their prompted slices, stopping where each object ends. :class:`Sam2Engine` is
``presegment --engine sam2``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

from napari_medseg.core.errors import MedsegError
from napari_medseg.core.model import Case
from napari_medseg.engines.base import Progress, SegmentationResult
from napari_medseg.engines.sam import Prediction, SamEngine, SliceSession
from napari_medseg.engines.sam2_model import (
    LoadedSam2,
    default_batch_size,
    describe,
    load_sam2,
    position_codes,
)
from napari_medseg.engines.sam_cache import now_iso
from napari_medseg.engines.sam_edit import paste_slices
from napari_medseg.engines.sam_prompts import Prompt

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # SAM2Transforms
MEMORY_SLICES = 16  # features kept in memory (about 17 MB each for a 1024 px model)


def xy_prompt(prompt: Prompt) -> dict:
    """The points (x, y), labels and box (x0, y0, x1, y1) of ``prompt`` as sam2 takes them."""
    has_points = len(prompt.points) > 0
    return {
        "points": np.ascontiguousarray(prompt.points[:, ::-1]) if has_points else None,
        "labels": prompt.point_labels if has_points else None,
        "box": prompt.box[[1, 0, 3, 2]] if prompt.box is not None else None,
    }


def preprocess(image_u8: np.ndarray, size: int):
    """A (y, x, 3) uint8 slice -> the (1, 3, size, size) input ``SAM2ImagePredictor``
    makes of it (its ``SAM2Transforms``, run eagerly: scripting them costs seconds)."""
    from torchvision.transforms import functional as TF

    image = TF.to_tensor(np.ascontiguousarray(image_u8))
    image = TF.resize(image, [size, size])
    return TF.normalize(image, IMAGENET_MEAN, IMAGENET_STD)[None]


class Sam2Session(SliceSession):
    """One image stack (z, y, x, 3 uint8) ready for prompting with one SAM 2.1 model."""

    def __init__(
        self,
        sam: LoadedSam2,
        stack: np.ndarray,
        cache=None,
        meta=None,
        batch_size: int | None = None,
    ):
        super().__init__(sam, stack, cache, meta, describe(sam))
        self.requested: list[int] = []  # slices whose features were asked for, in order
        self._track: Sam2Track | None = None  # the memory :meth:`propagate` builds up
        # Slices per encoder call (1 on CPU). With more, a slice that propagation reaches
        # uncached is encoded together with the next uncached ones in its direction.
        self.batch_size = min(batch_size or default_batch_size(sam), MEMORY_SLICES)

    def _encode(self, slices: list[int]) -> dict[int, list]:
        """Run ``slices`` through the image encoder in one batch; their levels by slice
        (identical slices are encoded once)."""
        import torch

        first = {self.keys[z]: z for z in reversed(slices)}  # key -> its first slice
        unique = [z for z in slices if first[self.keys[z]] == z]
        batch = torch.cat([preprocess(self.stack[z], self.sam.image_size) for z in unique])
        with torch.inference_mode():
            levels = self.sam.model.forward_image(batch.to(self.sam.device))["backbone_fpn"]
        self.encoded += len(unique)
        own = {z: [lv[i : i + 1].clone() for lv in levels] for i, z in enumerate(unique)}
        if self.cache is not None:
            for z, own_levels in own.items():
                flat = np.concatenate([lv.cpu().numpy().ravel() for lv in own_levels])
                shapes = [list(lv.shape[1:]) for lv in own_levels]
                meta = {**self.meta, "slice": z, "levels": shapes, "created": now_iso()}
                self.cache.put(self.keys[z], flat, meta)
        return {z: own[first[self.keys[z]]] for z in slices}

    def _from_cache(self, z: int) -> list | None:
        import torch

        hit = self.cache.get(self.keys[z]) if self.cache is not None else None
        if hit is None:
            return None
        flat, meta = hit
        levels, start = [], 0
        for shape in meta["levels"]:
            n = int(np.prod(shape))
            part = flat[start : start + n].astype(np.float32).reshape(1, *shape)
            levels.append(torch.from_numpy(part).to(self.sam.device))
            start += n
        return levels

    def _remember(self, z: int, levels: list) -> None:
        with self._lock:
            self._memory[z] = levels
            self._memory.move_to_end(z)
            if len(self._memory) > MEMORY_SLICES:
                self._memory.popitem(last=False)

    def _ahead(self, z: int) -> list[int]:
        """``z`` and, with batching, the next uncached slices in the direction of travel."""
        if self.batch_size == 1:
            return [z]
        step = -1 if len(self.requested) > 1 and self.requested[-2] > z else 1
        ahead = range(z + step, len(self.stack) if step > 0 else -1, step)
        uncached = (a for a in ahead if not self.is_embedded(a))  # no look past the batch
        return [z, *itertools.islice(uncached, self.batch_size - 1)]

    def _levels(self, z: int) -> list:
        with self._lock:
            if z in self._memory:
                self._memory.move_to_end(z)
                return self._memory[z]
        levels = self._from_cache(z)
        if levels is not None:
            self._remember(z, levels)
            return levels
        encoded = self._encode(self._ahead(z))
        for other, own in encoded.items():
            if other != z:
                self._remember(other, own)
        self._remember(z, encoded[z])  # last in: the most recently used
        return encoded[z]

    def embedding(self, z: int) -> list:
        """Slice ``z``'s backbone levels, encoded when missing (SamSession's call)."""
        return self._levels(z)

    def features(self, z: int) -> dict:
        """``forward_image``'s output for slice ``z`` (backbone levels and position codes)."""
        self.requested.append(z)
        levels = self._levels(z)
        return {"backbone_fpn": list(levels), "vision_pos_enc": position_codes(self.sam, levels)}

    def embed(
        self,
        slices=None,
        progress: Progress | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> int:
        """Encode the ``slices`` (default: all) not cached yet, in the given order; return how
        many went through the encoder (identical slices share one cache entry)."""
        todo, before = self.missing(slices), self.encoded
        if progress:
            progress(0, len(todo))
        for start in range(0, len(todo), self.batch_size):
            if cancelled and cancelled():
                break
            # Re-checked per batch: a slice equal to one encoded earlier is a cache hit now.
            batch = self.missing(todo[start : start + self.batch_size])
            for z, levels in (self._encode(batch) if batch else {}).items():
                self._remember(z, levels)
            if progress:
                progress(min(start + self.batch_size, len(todo)), len(todo))
        self.trim_cache()
        return self.encoded - before

    def trim_cache(self) -> None:
        """Keep the disk cache within its bound (after a run of encodes)."""
        if self.cache is not None and self.encoded:
            self.cache.trim()

    def propagate(
        self,
        start: int,
        mask: np.ndarray,
        label: int = 1,
        min_score: float = 0.5,
        min_area: int = 5,
        progress: Progress | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> dict[int, np.ndarray]:
        """:meth:`SamSession.propagate`'s contract with SAM 2.1's memory: ``mask`` becomes
        object ``label``'s mask on ``start`` (earlier calls' masks stay in the memory, so a
        corrected slice re-propagates from there); masks of the other slices it reaches.
        ``min_score`` is unused: SAM 2.1's object score decides where an object ends."""
        if self._track is None:
            self._track = Sam2Track(self)
        self._track.add_mask(start, label, mask)
        masks = self._track.propagate(start, min_area, progress, cancelled).get(label, {})
        masks.pop(start, None)
        return masks

    def predict(self, prompt: Prompt, multimask: bool = True) -> Prediction:
        """The best-scoring mask of ``SAM2ImagePredictor`` for ``prompt`` on its slice."""
        import torch

        if prompt.empty and prompt.mask_input is None:
            raise MedsegError("a SAM prompt needs at least one point or a box")
        model, pred = self.sam.model, self.sam.image_predictor
        with torch.inference_mode():
            # SAM2ImagePredictor.set_image's feature step, on cached features.
            _, feats, _, _ = model._prepare_backbone_features(self.features(prompt.slice))
            if model.directly_add_no_mem_embed:
                feats[-1] = feats[-1] + model.no_mem_embed
            maps = [
                f.permute(1, 2, 0).view(1, -1, *size)
                for f, size in zip(feats[::-1], pred._bb_feat_sizes[::-1], strict=True)
            ][::-1]
            pred._features = {"image_embed": maps[-1], "high_res_feats": maps[:-1]}
            pred._orig_hw, pred._is_image_set, pred._is_batch = [self.shape], True, False
            xy = xy_prompt(prompt)
            masks, scores, low = pred.predict(
                point_coords=xy["points"],
                point_labels=xy["labels"],
                box=xy["box"],
                mask_input=prompt.mask_input,
                multimask_output=multimask,
            )
        best = int(np.argmax(scores))
        return Prediction(masks[best] > 0, float(scores[best]), low[best : best + 1])


class Sam2Track:
    """Objects followed through a session's slices with SAM 2.1's memory.

    Add prompts (points, a box or a mask on any slice, per object label), then
    :meth:`propagate`. A later prompt on another slice (a correction) becomes one more
    conditioning frame of that object; propagating again from it updates the masks.
    """

    def __init__(self, session: Sam2Session):
        from napari_medseg.engines.sam2_tracker import new_state

        self.session, self.model = session, session.sam.model
        h, w = session.shape
        self.state = new_state(self.model, len(session.stack), h, w, session.features)
        self.prompted: dict[int, set[int]] = {}  # label -> prompted slices

    def _mask_of(self, label: int, obj_ids, masks) -> np.ndarray:
        return (masks[list(obj_ids).index(label), 0] > 0).cpu().numpy()

    def add(self, prompt: Prompt) -> np.ndarray:
        """Prompt object ``prompt.label`` on ``prompt.slice``; its mask there."""
        import torch

        if prompt.empty:
            raise MedsegError("a SAM prompt needs at least one point or a box")
        with torch.inference_mode():
            _, ids, masks = self.model.add_new_points_or_box(
                self.state,
                frame_idx=prompt.slice,
                obj_id=prompt.label,
                **xy_prompt(prompt),
            )
        self.prompted.setdefault(prompt.label, set()).add(prompt.slice)
        return self._mask_of(prompt.label, ids, masks)

    def add_mask(self, z: int, label: int, mask: np.ndarray) -> np.ndarray:
        """Give object ``label`` the mask ``mask`` on slice ``z`` (e.g. an edited mask)."""
        import torch

        with torch.inference_mode():
            _, ids, masks = self.model.add_new_mask(self.state, z, label, np.asarray(mask, bool))
        self.prompted.setdefault(label, set()).add(z)
        return self._mask_of(label, ids, masks)

    def propagate(
        self,
        start: int | None = None,
        min_area: int = 5,
        progress: Progress | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> dict[int, dict[int, np.ndarray]]:
        """Masks per label and slice, forward then backward through the slices.

        From ``start`` (a correction's slice) both ways, or by default forward from the
        first prompted slice and backward from the last (an object counts from its own
        prompts on). An object ends, in one direction, at the first slice where its mask has
        fewer than ``min_area`` pixels; a direction stops when every object has ended, or
        when ``cancelled()``.
        """
        if not self.prompted:
            raise MedsegError("prompt at least one object before propagating")
        n = len(self.session.stack)
        out: dict[int, dict[int, np.ndarray]] = {label: {} for label in self.prompted}
        done = 0
        for reverse in (False, True):
            first = start
            if first is None:
                pick = max if reverse else min
                first = pick(z for zs in self.prompted.values() for z in zs)
            # Where each object starts counting: its own prompts, or the correction's slice.
            reached = {
                label: first if start is not None else (max(zs) if reverse else min(zs))
                for label, zs in self.prompted.items()
            }
            ended: set[int] = set()
            frames = self.model.propagate_in_video(
                self.state, start_frame_idx=first, reverse=reverse
            )
            for z, ids, masks in frames:
                for label in out:
                    past = z <= reached[label] if reverse else z >= reached[label]
                    if label in ended or not past:
                        continue
                    mask = self._mask_of(label, ids, masks)
                    if mask.sum() < min_area:
                        ended.add(label)
                    else:
                        out[label][z] = mask
                done += 1
                if progress:
                    progress(min(done, n), n)
                if len(ended) == len(out) or (cancelled and cancelled()):
                    frames.close()
                    break
            if cancelled and cancelled():
                break
        if progress:
            progress(n, n)
        self.session.trim_cache()
        return out


class Sam2Engine(SamEngine):
    """``presegment --engine sam2``: SAM 2.1 / MedSAM2 masks from stored prompts or boxes;
    prompts with ``"propagate": true`` are followed through the volume together."""

    name = "sam2"
    checkpoint_kind = "a local SAM 2.1 .pt file"
    session_class = Sam2Session
    load_model = staticmethod(load_sam2)

    def segment_case(self, case: Case, progress: Progress | None = None) -> SegmentationResult:
        prompts, labelmap, origin, session = self.open_case(case)
        labels = np.zeros(session.stack.shape[:3], np.uint16)
        scores, track = [], None
        for prompt in prompts:
            if prompt.propagate:
                track = track or Sam2Track(session)
                track.add(prompt)
                continue
            pred = session.predict(prompt)
            paste_slices(labels, {prompt.slice: pred.mask}, prompt.label)
            scores.append(round(pred.score, 4))
        if track is not None:
            for label, masks in sorted(track.propagate(progress=progress).items()):
                paste_slices(labels, masks, label)  # earlier labels keep their voxels
        if progress:
            progress(1, 1)
        return self.result(case, labels, labelmap, origin, prompts, scores, session)
