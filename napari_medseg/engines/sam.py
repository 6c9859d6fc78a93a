"""SAM-assisted segmentation: cached slice embeddings, prompt-to-mask decoding, 3D propagation.

:class:`SamSession` holds one case's 8-bit SAM input stack (see
:mod:`napari_medseg.engines.windowing`) and a model. Slice embeddings come from the disk
cache (:mod:`napari_medseg.engines.sam_cache`) or the batched encoder
(:mod:`napari_medseg.engines.sam_embed`); decoding a prompt then runs only SAM's prompt
encoder and mask decoder. :class:`SamEngine` is the ``presegment --engine sam`` engine: it
segments a case from stored prompts (the JSON format is documented in
:mod:`napari_medseg.engines.sam_prompts`) or from the case's PASCAL VOC boxes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from napari_medseg.core.errors import MedsegError
from napari_medseg.core.labelmap import LabelMap
from napari_medseg.core.model import Case
from napari_medseg.engines.base import Progress, SegmentationResult
from napari_medseg.engines.medsam import mask_from_logits, scale_xy
from napari_medseg.engines.sam_cache import EmbeddingCache, now_iso, slice_key
from napari_medseg.engines.sam_edit import paste_slices
from napari_medseg.engines.sam_embed import encode_batches
from napari_medseg.engines.sam_model import LoadedSam, describe, load_sam
from napari_medseg.engines.sam_prompts import (
    Prompt,
    load_prompts,
    prompt_from_mask,
    prompts_from_boxes,
    prompts_from_mask,
)
from napari_medseg.engines.windowing import ChannelSpec, default_mapping, sam_stack, source_channels

MEMORY_SLICES = 64  # decoded-from-disk embeddings kept in memory per session


@dataclass
class Prediction:
    mask: np.ndarray  # (y, x) bool
    score: float  # SAM's predicted IoU of the chosen mask
    low_res: np.ndarray  # (1, h, w) logits, usable as the next prompt's mask_input


def case_stack(case: Case, mapping: list[ChannelSpec] | None = None) -> tuple[np.ndarray, list]:
    """The (z, y, x, 3) uint8 stack SAM sees of ``case`` (images on the reference grid) and
    the windows used for each input channel."""
    ref = case.reference_image()
    grid = ref.shape[: ref.spatial_ndim]
    sources = [
        s for s in source_channels(case.images) if s.volume.shape[: s.volume.spatial_ndim] == grid
    ]
    return sam_stack(sources, mapping or default_mapping(sources))


class SliceSession:
    """What the SAM and SAM 2.1 sessions share: one (z, y, x, 3) uint8 stack, a content key
    per slice, an in-memory LRU in front of the disk cache, and a count of encoded slices."""

    def __init__(self, sam, stack: np.ndarray, cache: EmbeddingCache | None, meta, model: dict):
        self.sam, self.stack, self.cache = sam, stack, cache
        self.meta = {**(meta or {}), "model": model}
        self.keys = [slice_key(s, sam.model_id) for s in stack]
        self._memory: OrderedDict[int, object] = OrderedDict()
        self._lock = threading.Lock()  # a background embed and a prompt may share the LRU
        self.encoded = 0  # slices this session ran through the encoder

    @classmethod
    def for_case(cls, sam, case: Case, mapping: list[ChannelSpec] | None = None, **kw):
        """A session on ``case``'s images (on the reference grid) with a channel mapping."""
        stack, windows = case_stack(case, mapping)
        return cls(sam, stack, meta={"case": case.id, "channels": windows}, **kw)

    @property
    def shape(self) -> tuple[int, int]:
        return self.stack.shape[1:3]

    def is_embedded(self, z: int) -> bool:
        return z in self._memory or (self.cache is not None and self.keys[z] in self.cache)

    def missing(self, slices=None) -> list[int]:
        todo = range(len(self.stack)) if slices is None else slices
        return [z for z in dict.fromkeys(todo) if not self.is_embedded(z)]


class SamSession(SliceSession):
    """One image stack (z, y, x, 3 uint8) ready for prompting with one SAM model."""

    def __init__(
        self,
        sam: LoadedSam,
        stack: np.ndarray,
        cache: EmbeddingCache | None = None,
        meta: dict | None = None,
        batch_size: int | None = None,
        precision: str = "auto",
    ):
        super().__init__(sam, stack, cache, meta, describe(sam))
        self.batch_size, self.precision = batch_size, precision

    def _remember(self, z: int, emb: np.ndarray) -> None:
        with self._lock:
            self._memory[z] = emb
            self._memory.move_to_end(z)
            if self.cache is not None and len(self._memory) > MEMORY_SLICES:
                self._memory.popitem(last=False)

    def embed(
        self,
        slices=None,
        progress: Progress | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> int:
        """Embed the ``slices`` (default: all) not cached yet; return how many were encoded."""
        todo = self.missing(slices)
        total = len(todo)
        if progress:
            progress(0, total)

        def store(start: int, embs: np.ndarray) -> None:
            for z, emb in zip(todo[start : start + len(embs)], embs, strict=True):
                emb16 = emb.astype(np.float16)
                if self.cache is not None:
                    self.cache.put(
                        self.keys[z], emb16, {**self.meta, "slice": z, "created": now_iso()}
                    )
                self._remember(z, emb16)
            if progress:
                progress(start + len(embs), total)

        done = encode_batches(
            self.sam, self.stack[todo], self.batch_size, self.precision, store, cancelled
        )
        self.encoded += done
        if self.cache is not None and done:
            self.cache.trim()
        return done

    def embedding(self, z: int) -> np.ndarray:
        """The (C, h, w) float16 embedding of slice ``z``, encoding it if needed."""
        with self._lock:
            if z in self._memory:
                self._memory.move_to_end(z)
                return self._memory[z]
        hit = self.cache.get(self.keys[z]) if self.cache is not None else None
        if hit is None:
            self.embed([z])
            with self._lock:
                return self._memory[z]
        self._remember(z, hit[0])
        return hit[0]

    def predict(self, prompt: Prompt, multimask: bool = True) -> Prediction:
        """The best-scoring SAM mask for ``prompt`` on slice ``prompt.slice``."""
        import torch
        import torch.nn.functional as F
        from segment_anything.utils.transforms import ResizeLongestSide

        if prompt.empty and prompt.mask_input is None:
            raise MedsegError("a SAM prompt needs at least one point or a box")
        model, dev = self.sam.model, self.sam.device
        size = self.shape
        resize = ResizeLongestSide(self.sam.config.img_size)
        medsam = self.sam.variant == "medsam"
        if medsam:  # MedSAM stretches the slice to the square input; one mask
            multimask = False

        def to_input(xy: np.ndarray) -> np.ndarray:
            if medsam:
                return scale_xy(xy, size, self.sam.config.img_size)
            return resize.apply_coords(xy, size)

        points = boxes = masks = None
        if len(prompt.points):
            xy = to_input(prompt.points[:, ::-1])
            points = (
                torch.as_tensor(xy[None], dtype=torch.float, device=dev),
                torch.as_tensor(prompt.point_labels[None], dtype=torch.int, device=dev),
            )
        if prompt.box is not None:
            y0, x0, y1, x1 = prompt.box
            xyxy = to_input(np.array([[x0, y0], [x1, y1]], float)).reshape(1, 4)
            boxes = torch.as_tensor(xyxy, dtype=torch.float, device=dev)
        if prompt.mask_input is not None:
            masks = torch.as_tensor(prompt.mask_input[None], dtype=torch.float, device=dev)
        emb = torch.as_tensor(self.embedding(prompt.slice)[None], device=dev).float()
        with torch.inference_mode():
            sparse, dense = model.prompt_encoder(points=points, boxes=boxes, masks=masks)
            low, iou = model.mask_decoder(
                image_embeddings=emb,
                image_pe=self.sam.dense_pe,
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=multimask,
            )
            best = int(torch.argmax(iou[0]))
            low = low[:, best : best + 1]
            if medsam:
                mask = mask_from_logits(low, size)
                return Prediction(mask, float(iou[0, best]), low[0].cpu().numpy())
            # Upscale only the chosen mask, as Sam.postprocess_masks does.
            up = F.interpolate(
                low, (model.image_encoder.img_size,) * 2, mode="bilinear", align_corners=False
            )
            h, w = resize.get_preprocess_shape(size[0], size[1], model.image_encoder.img_size)
            up = F.interpolate(up[..., :h, :w], size, mode="bilinear", align_corners=False)
            mask = (up[0, 0] > model.mask_threshold).cpu().numpy()
        return Prediction(mask, float(iou[0, best]), low[0].cpu().numpy())

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
        """Follow ``mask`` from slice ``start`` through the volume (see :func:`propagate`)."""
        return propagate(
            lambda p: self.predict(p),
            start,
            mask,
            len(self.stack),
            label,
            min_score,
            min_area,
            progress,
            cancelled,
        )


def propagate(
    predict: Callable[[Prompt], Prediction],
    start: int,
    mask: np.ndarray,
    n_slices: int,
    label: int = 1,
    min_score: float = 0.5,
    min_area: int = 5,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> dict[int, np.ndarray]:
    """Masks on the slices above and below ``start``, each prompted by its neighbour's mask.

    The previous slice's mask gives the next slice's box and an interior positive point. A
    direction stops when the mask vanishes (fewer than ``min_area`` pixels), SAM's score
    falls below ``min_score``, or ``cancelled()`` turns true. ``start`` itself is not included.
    """
    out: dict[int, np.ndarray] = {}
    total, done = max(1, n_slices - 1), 0
    for step in (1, -1):
        prev, z = mask, start + step
        while 0 <= z < n_slices and not (cancelled and cancelled()):
            prompt = prompt_from_mask(prev, z, label)
            if prompt is None:
                break
            pred = predict(prompt)
            done += 1
            if progress:
                progress(done, total)
            if pred.mask.sum() < min_area or pred.score < min_score:
                break
            out[z] = prev = pred.mask
            z += step
    if progress:
        progress(total, total)
    return out


class SamEngine:
    """``presegment --engine sam``: masks from stored prompts or the dataset's VOC boxes.

    With ``seed_from_masks`` a case with neither is re-segmented from its existing mask (a
    box and an interior point per label and slice).
    """

    name = "sam"
    checkpoint_kind = "a local segment-anything .pth file"
    session_class = SamSession
    load_model = staticmethod(load_sam)

    def __init__(
        self,
        sam: LoadedSam,
        cache: EmbeddingCache | None,
        prompts: dict,
        label_names: dict,
        seed_from_masks: bool = False,
    ):
        self.sam, self.cache, self.prompts, self.label_names = sam, cache, prompts, label_names
        self.seed_from_masks = seed_from_masks

    @classmethod
    def from_options(
        cls,
        checkpoint=None,
        cache=None,
        prompts=None,
        device=None,
        variant=None,
        seed_from_masks=False,
    ) -> SamEngine:
        if not checkpoint:
            raise MedsegError(
                f"the {cls.name} engine needs --checkpoint PATH ({cls.checkpoint_kind})"
            )
        stored, names = load_prompts(prompts) if prompts else ({}, {})
        sam = cls.load_model(checkpoint, device, variant)
        return cls(sam, EmbeddingCache(cache), stored, names, seed_from_masks)

    def case_prompts(self, case: Case) -> tuple[list[Prompt], LabelMap, str]:
        if case.id in self.prompts:
            prompts = self.prompts[case.id]
            ids = sorted({p.label for p in prompts})
            names = {i: self.label_names.get(i, f"label {i}") for i in ids}
            return prompts, LabelMap.from_names(names), "prompts"
        if case.boxes:
            prompts, labelmap = prompts_from_boxes(case.boxes)
            return prompts, labelmap, "boxes"
        if self.seed_from_masks and case.masks:
            mask = case.masks[0]
            prompts = prompts_from_mask(mask.array)
            labelmap = mask.labelmap or LabelMap.from_names(
                {p.label: f"label {p.label}" for p in prompts}
            )
            return prompts, labelmap, "mask"
        raise MedsegError(f"case {case.id!r} has no stored SAM prompts and no boxes to prompt with")

    def open_case(self, case: Case):
        """The case's prompts, labelmap, their origin and a session on its images."""
        prompts, labelmap, origin = self.case_prompts(case)
        session = self.session_class.for_case(self.sam, case, cache=self.cache)
        n = len(session.stack)
        bad = [p.slice for p in prompts if not 0 <= p.slice < n]
        if bad:
            raise MedsegError(f"case {case.id!r}: prompt slice {bad[0]} outside 0..{n - 1}")
        return prompts, labelmap, origin, session

    def result(self, case: Case, labels, labelmap, origin, prompts, scores, session):
        """The labels on the case's reference grid with what produced them."""
        ref = case.reference_image()
        info = {
            "engine": self.name,
            **session.meta["model"],
            "prompts": origin,
            "n_prompts": len(prompts),
            "scores": scores,
            "encoded_slices": session.encoded,
            "channels": session.meta["channels"],
        }
        return SegmentationResult(labels.reshape(ref.shape[: ref.spatial_ndim]), labelmap, info)

    def segment_case(self, case: Case, progress: Progress | None = None) -> SegmentationResult:
        prompts, labelmap, origin, session = self.open_case(case)
        # Propagation may visit every slice: embed them all in batches up front.
        wanted = None if any(p.propagate for p in prompts) else [p.slice for p in prompts]
        session.embed(wanted)
        labels = np.zeros(session.stack.shape[:3], np.uint16)
        scores = []
        for i, prompt in enumerate(prompts):
            pred = session.predict(prompt)
            masks = {prompt.slice: pred.mask}
            if prompt.propagate and pred.mask.any():
                masks.update(session.propagate(prompt.slice, pred.mask, prompt.label))
            paste_slices(labels, masks, prompt.label)  # earlier prompts keep their voxels
            scores.append(round(pred.score, 4))
            if progress:
                progress(i + 1, len(prompts))
        return self.result(case, labels, labelmap, origin, prompts, scores, session)
