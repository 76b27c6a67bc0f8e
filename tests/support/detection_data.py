"""A tiny YOLO-style detector and the images it learns from, made on the spot so no test downloads weights.

- ``write_shapes_dataset``: coloured squares, discs and triangles on textured backgrounds, in a YOLO layout
  (``images/{train,val}``, ``labels/{train,val}``, ``data.yaml``). Images have assorted sizes and aspect
  ratios, so the letterbox inversion is exercised; a few background images have no label file.
- ``TinyYolo``: an anchor-free one-level detector whose forward returns ``[B, 4 + nc, N]``: boxes as
  cx, cy, w, h in input pixels concatenated with class probabilities, exactly the head the engine must make
  int8-safe.
- ``train_tiny_yolo``: a few seconds of Adam on letterboxed images through the engine's own preprocessing.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image, ImageDraw

if TYPE_CHECKING:
    from conversions.engine.report.results import ExportReport

CLASSES = ("square", "disc", "triangle")
CLASS_COLOURS = ((220, 40, 40), (40, 190, 60), (50, 80, 230))
SIZES = ((160, 120), (120, 160), (128, 128), (200, 150), (144, 112))
INPUT_SIZE = 128
STRIDE = 8
MAX_DISTANCE = 8
"""Box sides reach at most this many strides from their anchor (a sigmoid keeps int8 boxes accurate)."""


# ------------------------------------------------------------------------------------------- images


def _background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Low-frequency blotches plus stripes and pixel noise in muted colours."""
    coarse = rng.uniform(70, 170, (h // 16 + 2, w // 16 + 2, 3))
    blotches = np.asarray(Image.fromarray(coarse.astype(np.uint8)).resize((w, h), Image.BILINEAR), dtype=np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    angle = rng.uniform(0, math.pi)
    period = rng.uniform(6, 18)
    stripes = 18 * np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / period)
    noise = rng.normal(0, 10, (h, w, 3))
    return np.clip(blotches + stripes[..., None] + noise, 0, 255).astype(np.uint8)


def _draw_shape(draw: ImageDraw.ImageDraw, cls: int, box: tuple[float, float, float, float], colour: tuple) -> None:
    x0, y0, x1, y1 = box
    if cls == 0:
        draw.rectangle(box, fill=colour)
    elif cls == 1:
        draw.ellipse(box, fill=colour)
    else:
        draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=colour)


def make_image(rng: np.random.Generator, max_objects: int = 3) -> tuple[Image.Image, list[tuple[int, float, float, float, float]]]:
    """One image and its YOLO labels ``(class, cx, cy, w, h)`` normalised to the image size."""
    w, h = SIZES[rng.integers(len(SIZES))]
    image = Image.fromarray(_background(rng, w, h))
    draw = ImageDraw.Draw(image)
    labels: list[tuple[int, float, float, float, float]] = []
    placed: list[tuple[float, float, float, float]] = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        for _attempt in range(20):
            side = float(rng.uniform(18, 0.45 * min(w, h)))
            bw, bh = side * rng.uniform(0.8, 1.25), side * rng.uniform(0.8, 1.25)
            x0, y0 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            box = (x0, y0, x0 + bw, y0 + bh)
            if all(_overlap(box, other) < 0.05 for other in placed):
                break
        else:
            continue
        cls = int(rng.integers(len(CLASSES)))
        colour = tuple(int(np.clip(c + rng.integers(-30, 31), 0, 255)) for c in CLASS_COLOURS[cls])
        _draw_shape(draw, cls, box, colour)
        placed.append(box)
        labels.append((cls, (box[0] + box[2]) / 2 / w, (box[1] + box[3]) / 2 / h, bw / w, bh / h))
    return image, labels


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))


def write_shapes_dataset(root: Path, train: int = 0, val: int = 60, background: int = 3, seed: int = 0) -> Path:
    """A YOLO dataset at ``root``; ``background`` val images hold no shape and have no label file."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", train), ("val", val)):
        if not count:
            continue
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            image, labels = make_image(rng)
            name = f"{split}_{i:04d}"
            image.save(root / "images" / split / f"{name}.jpg", quality=92)
            lines = [f"{c} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}" for c, cx, cy, bw, bh in labels]
            (root / "labels" / split / f"{name}.txt").write_text("\n".join(lines) + "\n")
        if split == "val":
            for i in range(background):
                w, h = SIZES[i % len(SIZES)]
                Image.fromarray(_background(rng, w, h)).save(root / "images" / split / f"background_{i}.jpg", quality=92)
    splits = [s for s, n in (("train", train), ("val", val)) if n]
    yaml = [f"path: {root}"] + [f"{s}: images/{s}" for s in splits] + ["names:"]
    yaml += [f"  {i}: {name}" for i, name in enumerate(CLASSES)]
    if "train" not in splits:
        yaml.insert(1, "train: images/val")
    (root / "data.yaml").write_text("\n".join(yaml) + "\n")
    return root


# -------------------------------------------------------------------------------------------- model


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class TinyYolo(nn.Module):
    """Stride-8 anchor-free detector: ``[B, 3, S, S] -> [B, 4 + nc, (S/8)^2]`` (cx, cy, w, h px; probabilities)."""

    def __init__(self, num_classes: int = len(CLASSES), width: int = 32) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.backbone = nn.Sequential(
            _conv(3, width // 4, 2), _conv(width // 4, width // 2, 2), _conv(width // 2, width, 2), _conv(width, width),
            _conv(width, width),
        )
        self.box = nn.Conv2d(width, 4, 1)
        self.cls = nn.Conv2d(width, num_classes, 1)
        nn.init.constant_(self.cls.bias, -4.0)

    def raw(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(ltrb distances in pixels [B,4,N], class logits [B,nc,N], anchor centres [2,N])."""
        feat = self.backbone(x)
        b, _, h, w = feat.shape
        ltrb = self.box(feat).sigmoid().view(b, 4, h * w) * (MAX_DISTANCE * STRIDE)
        logits = self.cls(feat).view(b, self.num_classes, h * w)
        ys, xs = torch.meshgrid(torch.arange(h, dtype=x.dtype), torch.arange(w, dtype=x.dtype), indexing="ij")
        anchors = torch.stack([xs.reshape(-1), ys.reshape(-1)]) * STRIDE + STRIDE / 2
        return ltrb, logits, anchors

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ltrb, logits, anchors = self.raw(x)
        lt, rb = ltrb[:, :2], ltrb[:, 2:]
        centre = anchors[None] + (rb - lt) / 2
        size = lt + rb
        return torch.cat([centre, size, logits.sigmoid()], 1)


def build(num_classes: int = len(CLASSES)) -> TinyYolo:
    """The ``--model tests/detection/synthetic.py:build`` factory."""
    return TinyYolo(num_classes)


# ----------------------------------------------------------------------------------------- training


def letterboxed_batch(count: int, seed: int) -> tuple[torch.Tensor, list[np.ndarray]]:
    """``count`` fresh images through the engine's ``yolo`` preset, with labels as xyxy in input pixels."""
    from conversions.engine.data.preprocess import build_spec, transform
    from conversions.engine.detection.geometry import InputGeometry

    spec = build_spec("yolo", (INPUT_SIZE, INPUT_SIZE), 3)
    rng = np.random.default_rng(seed)
    arrays, targets = [], []
    for _ in range(count):
        image, labels = make_image(rng)
        arrays.append(transform(image, spec))
        box = InputGeometry.for_image(image.size[0], image.size[1], spec)
        rows = np.asarray([[c, *box.label_to_input(cx, cy, bw, bh)] for c, cx, cy, bw, bh in labels], np.float32)
        targets.append(rows.reshape(-1, 5))
    return torch.from_numpy(np.stack(arrays)), targets


def _assign(targets: list[np.ndarray], anchors: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, ...]:
    """Anchors within 1.5 strides of a box centre (and inside it) learn that box; the smallest box wins."""
    n = anchors.shape[1]
    cls_t = torch.zeros(len(targets), num_classes, n)
    box_t = torch.zeros(len(targets), 4, n)
    pos = torch.zeros(len(targets), n, dtype=torch.bool)
    ax, ay = anchors[0], anchors[1]
    for i, rows in enumerate(targets):
        order = sorted(range(len(rows)), key=lambda k: -(rows[k, 3] - rows[k, 1]) * (rows[k, 4] - rows[k, 2]))
        for k in order:  # largest first, so smaller boxes overwrite shared anchors
            c, x0, y0, x1, y1 = (float(v) for v in rows[k])
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            near = ((ax - cx).abs() <= 1.5 * STRIDE) & ((ay - cy).abs() <= 1.5 * STRIDE)
            inside = (ax > x0) & (ax < x1) & (ay > y0) & (ay < y1)
            mask = near & inside
            if not mask.any():
                mask = ((ax - cx) ** 2 + (ay - cy) ** 2) == ((ax - cx) ** 2 + (ay - cy) ** 2).min()
            cls_t[i, :, mask] = 0
            cls_t[i, int(c), mask] = 1
            box_t[i, :, mask] = torch.tensor([x0, y0, x1, y1])[:, None]
            pos[i, mask] = True
    return cls_t, box_t, pos


def _giou_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - GIoU for xyxy boxes shaped ``[K, 4]``."""
    ix0, iy0 = torch.max(pred[:, 0], target[:, 0]), torch.max(pred[:, 1], target[:, 1])
    ix1, iy1 = torch.min(pred[:, 2], target[:, 2]), torch.min(pred[:, 3], target[:, 3])
    inter = (ix1 - ix0).clamp(min=0) * (iy1 - iy0).clamp(min=0)
    area_p = (pred[:, 2] - pred[:, 0]) * (pred[:, 3] - pred[:, 1])
    area_t = (target[:, 2] - target[:, 0]) * (target[:, 3] - target[:, 1])
    union = area_p + area_t - inter + 1e-6
    hull = (torch.max(pred[:, 2], target[:, 2]) - torch.min(pred[:, 0], target[:, 0])) * (
        torch.max(pred[:, 3], target[:, 3]) - torch.min(pred[:, 1], target[:, 1])
    )
    return (1 - inter / union + (hull - union) / (hull + 1e-6)).mean()


def train_tiny_yolo(steps: int = 300, batch: int = 32, seed: int = 0, images: int = 768) -> TinyYolo:
    """Trains on ``images`` generated images (drawn once) for ``steps`` Adam steps: ~25 s on one core.

    One thread: on a shared two-core machine, two threads fight the neighbours and run ten times slower.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(steps, batch, seed, images)
    finally:
        torch.set_num_threads(threads)


def _train(steps: int, batch: int, seed: int, images: int) -> TinyYolo:
    torch.manual_seed(seed)
    model = TinyYolo()
    inputs, targets = letterboxed_batch(images, seed + 1000)
    _, _, anchors = model.raw(inputs[:1])
    cls_t, box_t, pos = _assign(targets, anchors, model.num_classes)
    optimiser = torch.optim.Adam(model.parameters(), lr=4e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=4e-3, total_steps=steps, pct_start=0.15)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(inputs), (batch,), generator=gen)
        x = inputs[idx]
        if torch.rand((), generator=gen) < 0.5:  # horizontal flip: mirror images, boxes and targets alike
            x, flip = x.flip(-1), True
        else:
            flip = False
        ltrb, logits, _ = model.raw(x)
        ct, bt, ps = cls_t[idx], box_t[idx], pos[idx]
        if flip:
            ct, bt, ps = _flip_targets(ct, bt, ps, model)
        num_pos = max(int(ps.sum()), 1)
        cls_loss = F.binary_cross_entropy_with_logits(logits, ct, reduction="sum") / num_pos
        pred_xyxy = torch.cat([anchors[None] - ltrb[:, :2], anchors[None] + ltrb[:, 2:]], 1)
        box_loss = _giou_loss(pred_xyxy.permute(0, 2, 1)[ps], bt.permute(0, 2, 1)[ps]) if ps.any() else 0.0
        loss = cls_loss + 2.0 * box_loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
    return model.eval()


def _flip_targets(ct: torch.Tensor, bt: torch.Tensor, ps: torch.Tensor, model: TinyYolo) -> tuple[torch.Tensor, ...]:
    side = INPUT_SIZE // STRIDE
    b = ct.shape[0]
    ct = ct.view(b, -1, side, side).flip(-1).reshape(b, -1, side * side)
    ps = ps.view(b, side, side).flip(-1).reshape(b, side * side)
    bt = bt.view(b, 4, side, side).flip(-1).reshape(b, 4, side * side)
    bt = torch.stack([INPUT_SIZE - bt[:, 2], bt[:, 1], INPUT_SIZE - bt[:, 0], bt[:, 3]], 1)
    return ct, bt, ps


# ---------------------------------------------------------------------------------------- benchmark


def export_detector(checkpoint: Path, dataset: Path, head: str, out: Path, calib: int = 50, evaluate: int = 60,
                    task: str = "detect") -> ExportReport:
    """float32 + int8 of the trained detector through the whole engine, with one ``--detect-head`` mode."""
    from conversions.engine.config import DataSpec, ExportConfig, ModelSpec
    from conversions.engine.pipeline import run_export

    config = ExportConfig(
        model=ModelSpec(checkpoint=str(checkpoint), model=f"{Path(__file__).resolve()}:build",
                        input_shape=(1, 3, INPUT_SIZE, INPUT_SIZE), trust_checkpoint=True),
        data=DataSpec(dataset_dir=str(dataset), num_calib_samples=calib, num_eval_samples=evaluate),
        task=task, detect_head=head, variants=("none", "int8"), output_dir=str(out), force=True,
    )
    return run_export(config)


def comparison_rows(reports: dict[str, ExportReport]) -> list[dict[str, object]]:
    """One row per head mode: float and int8 mAP against the labels, and int8's fidelity to PyTorch."""
    rows = []
    for head, report in reports.items():
        acc = report.variant("int8").accuracy
        rows.append({
            "head": head,
            "mAP50 float": acc["pytorch_map50"], "mAP50 int8": acc["map50"], "drop": acc["drop_map50"],
            "mAP50-95 float": acc["pytorch_map50_95"], "mAP50-95 int8": acc["map50_95"], "drop ": acc["drop_map50_95"],
            "int8 vs PyTorch mAP50": acc["fidelity_map50"], "SQNR dB": report.variant("int8").fidelity.sqnr_db,
        })
    return rows


def main() -> None:
    """``python tests/detection/synthetic.py --out DIR``: train, write the dataset, export every head mode."""
    import argparse
    import time

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--out", type=Path, default=Path("/tmp/quantweb-detection"))
    parser.add_argument("--val", type=int, default=300, help="labelled images written (calibration + evaluation)")
    parser.add_argument("--calib", type=int, default=100)
    parser.add_argument("--eval", type=int, default=200)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--heads", default="none,normalize,split")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    checkpoint = args.out / f"tiny_yolo_seed{args.seed}.pth"
    started = time.perf_counter()
    torch.save(train_tiny_yolo(steps=args.steps, seed=args.seed).state_dict(), checkpoint)
    print(f"trained {checkpoint} in {time.perf_counter() - started:.1f} s")
    dataset = write_shapes_dataset(args.out / f"shapes_seed{args.seed}", val=args.val, seed=args.seed + 1)
    reports = {h: export_detector(checkpoint, dataset, h, args.out / f"export_{h}", args.calib, args.eval)
               for h in args.heads.split(",")}
    from conversions.engine.report.summary import summarize_table

    print(summarize_table(comparison_rows(reports)))


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    main()
