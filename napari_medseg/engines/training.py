"""Fine-tune (or train) the U-Net on curated masks, slice by slice.

Cases are split by patient (``case.metadata["patient"]`` when the reader knows it, else
the case id), so slices of one patient never sit on both sides. Each epoch reports its
mean loss (Dice + cross-entropy) and the validation Dice; the checkpoint with the best
validation Dice is written atomically to ``out``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_medseg.core.atomic import check_output_dir
from napari_medseg.core.errors import MedsegError
from napari_medseg.core.labelmap import LabelMap
from napari_medseg.core.model import Case, Dataset
from napari_medseg.engines.base import Progress
from napari_medseg.engines.device import pick_device
from napari_medseg.engines.unet import case_input, predict_volume
from napari_medseg.io.masks import case_mask_from_folder

Report = Callable[[dict], None]  # one call per epoch: epoch, epochs, loss, val_dice, best_dice
Cancel = Callable[[], bool]
CT_CLIP = (-200.0, 300.0)  # HU: soft tissue, contrast and a little bone; air and metal are clipped


@dataclass
class TrainResult:
    checkpoint: Path | None
    best_dice: float
    best_epoch: int
    history: list[dict] = field(default_factory=list)
    train_ids: list[str] = field(default_factory=list)
    val_ids: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # no curated mask
    cancelled: bool = False


@dataclass
class _Sample:
    case_id: str
    x: np.ndarray  # (C, Z, Y, X) normalised, float16 to halve memory
    y: np.ndarray  # (Z, Y, X) class indices


def curated_mask(
    case: Case, masks_dir: str | Path | None, labelmap: LabelMap | None
) -> np.ndarray | None:
    """The curated mask of ``case`` from ``masks_dir``, or the dataset's own mask when None."""
    if masks_dir is not None:
        vol = case_mask_from_folder(masks_dir, case, labelmap)
    else:
        vol = case.masks[0] if case.masks else None
    return None if vol is None else np.asarray(vol.array)


def patient_split(
    cases: dict[str, str], val_fraction: float, seed: int
) -> tuple[list[str], list[str]]:
    """Split case ids into train/validation by patient (``cases`` maps case id -> patient)."""
    patients = sorted(set(cases.values()))
    if len(patients) < 2:
        raise MedsegError(
            "training needs curated masks of at least 2 patients (one for validation)"
        )
    rng = np.random.default_rng(seed)
    rng.shuffle(patients)
    n_val = min(len(patients) - 1, max(1, round(len(patients) * val_fraction)))
    val = set(patients[:n_val])
    ids = list(cases)
    return [c for c in ids if cases[c] not in val], [c for c in ids if cases[c] in val]


def new_config(
    cases: list[Case], masks: list[np.ndarray], init_features: int, channels: list[str] | None
):
    """Config for a fresh network: the dataset's labels plus any id the masks use."""
    from napari_medseg.engines.unet_model import DEFAULT_NORMALISATION, UNetConfig

    labelmap = next(
        (c.labelmap for c in cases if c.labelmap is not None), None
    ) or LabelMap.from_names({})
    labelmap = labelmap.ensure(int(i) for m in masks for i in np.unique(m))
    if len(labelmap) < 2:
        labelmap = labelmap.ensure([1])
    channels = list(channels or [v.channel or v.name for v in cases[0].images if not v.rgb])
    n_out = 1 if len(labelmap) == 2 else len(labelmap)
    norm = dict(DEFAULT_NORMALISATION)
    if all(v.modality.upper() == "CT" for v in cases[0].images if not v.rgb):
        norm["clip"] = list(CT_CLIP)
    return UNetConfig(len(channels), n_out, init_features, labelmap.to_json(), channels, norm)


def to_classes(mask: np.ndarray, class_ids: list[int], case_id: str) -> np.ndarray:
    present = set(np.unique(mask).tolist())
    unknown = present - set(class_ids)
    if unknown:
        raise MedsegError(
            f"case {case_id!r}: the mask uses labels {sorted(unknown)} the model does not predict"
        )
    lut = np.zeros(max(present | set(class_ids)) + 1, np.int64)
    lut[class_ids] = np.arange(len(class_ids))
    return lut[mask]


def augment(x, y, rng):
    """Random flips, rotation (+-15 degrees) and intensity scale/shift of a batch (torch)."""
    import torch
    import torch.nn.functional as F

    n = x.shape[0]
    g = torch.Generator().manual_seed(int(rng.integers(2**31)))
    for dim in (-1, -2):
        flip = torch.rand(n, generator=g) < 0.5
        x[flip], y[flip] = x[flip].flip(dim), y[flip].flip(dim)
    angle = (torch.rand(n, generator=g) - 0.5) * (math.pi / 6)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack(
        [torch.stack([cos, -sin, torch.zeros(n)], 1), torch.stack([sin, cos, torch.zeros(n)], 1)], 1
    )
    grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    y = F.grid_sample(y[:, None].to(x), grid, mode="nearest", align_corners=False)[:, 0].long()
    scale = 1 + (torch.rand(n, x.shape[1], 1, 1, generator=g) - 0.5) * 0.2
    shift = (torch.rand(n, x.shape[1], 1, 1, generator=g) - 0.5) * 0.2
    return x * scale.to(x) + shift.to(x), y


def dice_ce_loss(logits, y):
    """Soft Dice over the foreground classes + (binary) cross-entropy."""
    import torch
    import torch.nn.functional as F

    if logits.shape[1] == 1:
        target = (y == 1).float()[:, None]
        ce = F.binary_cross_entropy_with_logits(logits, target)
        prob = torch.sigmoid(logits)
    else:
        ce = F.cross_entropy(logits, y)
        prob = torch.softmax(logits, 1)[:, 1:]
        target = F.one_hot(y, logits.shape[1]).permute(0, 3, 1, 2)[:, 1:].float()
    dims = (0, 2, 3)
    inter, total = (prob * target).sum(dims), (prob + target).sum(dims)
    dice = (2 * inter + 1.0) / (total + 1.0)
    return ce + (1 - dice.mean())


def dice_per_class(
    pred: np.ndarray, truth: np.ndarray, n_classes: int
) -> dict[int, tuple[int, int]]:
    """(2 * intersection, |pred| + |truth|) per foreground class index, to sum over cases."""
    return {
        k: (
            2 * int(np.count_nonzero((pred == k) & (truth == k))),
            int(np.count_nonzero(pred == k) + np.count_nonzero(truth == k)),
        )
        for k in range(1, n_classes)
    }


def _batches(samples: list[_Sample], batch_size: int, rng) -> list[tuple[int, np.ndarray]]:
    """Shuffled batches of (sample index, slice indices); a batch never mixes slice shapes."""
    batches = []
    for i, s in enumerate(samples):
        zs = rng.permutation(s.x.shape[1])
        batches += [(i, zs[k : k + batch_size]) for k in range(0, len(zs), batch_size)]
    order = rng.permutation(len(batches))
    return [batches[k] for k in order]


def load_samples(dataset: Dataset, case_ids: list[str], masks_dir, config, init_features, channels):
    """Normalised inputs and class maps of the cases with a curated mask.

    Returns the config (``config`` or a new one fitted to the data), the samples by case
    id, each case's patient (for the split) and the case ids skipped for want of a mask.
    """
    cases, masks, skipped = [], [], []
    for cid in case_ids:
        case = dataset.load_case(cid)
        mask = curated_mask(case, masks_dir, config.labelmap if config else case.labelmap)
        if mask is None:
            skipped.append(cid)
            continue
        cases.append(case)
        masks.append(mask if mask.ndim == 3 else mask[None])
    if config is None:
        if not cases:
            raise MedsegError("none of the cases has a curated mask to train on", masks_dir)
        config = new_config(cases, masks, init_features, channels)
    samples = {}
    for case, mask in zip(cases, masks, strict=True):
        x, _, crop = case_input(case, config)
        if crop is not None:  # fine-tuning the published model: its crop applies to the mask too
            mask = crop.mask(mask)
        if x.shape[1:] != mask.shape:
            raise MedsegError(
                f"case {case.id!r}: mask shape {mask.shape} differs from image shape {x.shape[1:]}"
            )
        y = to_classes(mask, config.class_ids, case.id)
        samples[case.id] = _Sample(case.id, x.astype(np.float16), y)
        for vol in case.images + case.masks:  # training keeps its own normalised copy
            vol.unload()
    patients = {
        c.id: str(c.metadata.get("patient") or c.metadata.get("Patient") or c.id) for c in cases
    }
    return config, samples, patients, skipped


def train_unet(
    dataset: Dataset,
    case_ids: list[str],
    masks_dir: str | Path | None,
    out: str | Path,
    *,
    epochs: int = 20,
    checkpoint: str | Path | None = None,
    init_features: int = 16,
    channels: list[str] | None = None,
    val_fraction: float = 0.2,
    batch_size: int = 8,
    lr: float | None = None,
    device: str | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    report: Report | None = None,
    cancelled: Cancel | None = None,
) -> TrainResult:
    """Train a U-Net (from ``checkpoint`` when given) on the cases with a curated mask.

    Returns the split, the per-epoch history and the best validation Dice; the best
    checkpoint is at ``out``. ``cancelled()`` is polled between batches: training stops and
    the best checkpoint so far stays.
    """
    import torch
    import torch.nn.functional as F

    from napari_medseg.engines.unet_model import build_model, load_checkpoint, save_checkpoint

    check_output_dir(out, dataset.root)  # never write the model into the source data
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    device = pick_device(device)
    base_model, config = load_checkpoint(checkpoint) if checkpoint else (None, None)
    config, samples, patients, skipped = load_samples(
        dataset, case_ids, masks_dir, config, init_features, channels
    )
    train_ids, val_ids = patient_split(patients, val_fraction, seed)
    train = [samples[c] for c in train_ids]
    val = [samples[c] for c in val_ids]

    model = (base_model or build_model(config)).to(device).train()
    optim = torch.optim.Adam(model.parameters(), lr=lr or (1e-4 if checkpoint else 1e-3))
    n_classes = max(2, config.out_channels)
    steps = sum(math.ceil(s.x.shape[1] / batch_size) for s in train)
    result = TrainResult(None, -1.0, 0, [], train_ids, val_ids, skipped)
    cuda = device.startswith("cuda")
    for epoch in range(1, epochs + 1):
        losses = []
        for step, (i, zs) in enumerate(_batches(train, batch_size, rng), start=1):
            if cancelled and cancelled():
                result.cancelled = True
                return result
            s = train[i]
            x = torch.from_numpy(s.x[:, zs].astype(np.float32).transpose(1, 0, 2, 3))
            y = torch.from_numpy(s.y[zs])
            x, y = augment(x, y, rng)
            pad = (0, -x.shape[-1] % 16, 0, -x.shape[-2] % 16)
            x, y = F.pad(x, pad).to(device), F.pad(y, pad).to(device)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
                loss = dice_ce_loss(model(x).float(), y)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            losses.append(loss.item())
            if progress:
                progress((epoch - 1) * steps + step, epochs * steps)
        val_dice = validation_dice(model, val, n_classes, batch_size, device)
        model.train()
        entry = {
            "epoch": epoch,
            "epochs": epochs,
            "loss": float(np.mean(losses)),
            "val_dice": val_dice,
        }
        if val_dice > result.best_dice:
            result.best_dice, result.best_epoch = val_dice, epoch
            result.checkpoint = save_checkpoint(
                model,
                config,
                out,
                extra={
                    "val_dice": val_dice,
                    "epoch": epoch,
                    "train_cases": train_ids,
                    "val_cases": val_ids,
                },
            )
        entry["best_dice"] = result.best_dice
        result.history.append(entry)
        if report:
            report(entry)
    return result


def validation_dice(
    model, samples: list[_Sample], n_classes: int, batch_size: int, device: str
) -> float:
    """Mean over foreground classes of the Dice summed over all validation voxels."""
    totals: dict[int, list[int]] = {}
    for s in samples:
        pred = predict_volume(model, s.x.astype(np.float32), batch_size=batch_size, device=device)
        for k, (inter, size) in dice_per_class(pred, s.y, n_classes).items():
            acc = totals.setdefault(k, [0, 0])
            acc[0] += inter
            acc[1] += size
    scores = [inter / size for inter, size in totals.values() if size > 0]
    return float(np.mean(scores)) if scores else 1.0
