#!/usr/bin/env python3
"""Build the demo image dataset: deterministic random crops of real photos.

For every photo in ``--originals`` (sorted by name) this writes ``--per-photo``
square crops to ``--out`` as ``<photo>_<k>.jpg`` (k = 0 .. N-1), each resized
to ``--size`` x ``--size`` RGB and saved as JPEG. A crop takes a random side
length of ``--min-scale``..``--max-scale`` times the photo's shorter side, a
random position, and a random horizontal flip (p = 0.5).

The output depends only on the photo bytes, its file name, and the options:
each photo gets its own RNG seeded from ``(--seed, crc32(photo name))``, so
adding or removing a photo leaves the other photos' crops unchanged. Re-running
is idempotent: files whose bytes would not change are not rewritten, and stale
``<name>_<k>.jpg`` files in ``--out`` that this run does not produce are
removed. A manifest of crop boxes is written next to the output directory
(``<out>_manifest.csv``) unless ``--no-manifest`` is given.

Dependencies: standard library, numpy, Pillow.
"""
from __future__ import annotations

import argparse
import csv
import io
import pathlib
import re
import sys
import zlib

import numpy as np
from PIL import Image

HERE = pathlib.Path(__file__).resolve().parent
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
CROP_NAME = re.compile(r"^.+_\d+\.jpg$")


def photo_rng(seed: int, stem: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(stem.encode("utf-8"))])


def crop_boxes(width: int, height: int, n: int, rng: np.random.Generator,
               min_scale: float, max_scale: float):
    """Yield (left, top, side, flip) for n square crops inside a WxH image."""
    short = min(width, height)
    for _ in range(n):
        scale = rng.uniform(min_scale, max_scale)
        side = max(1, min(short, int(round(scale * short))))
        left = int(rng.integers(0, width - side + 1))
        top = int(rng.integers(0, height - side + 1))
        flip = bool(rng.random() < 0.5)
        yield left, top, side, flip


def encode_jpeg(im: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality, optimize=True)
    return buf.getvalue()


def write_if_changed(path: pathlib.Path, data: bytes) -> bool:
    if path.exists() and path.read_bytes() == data:
        return False
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return True


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--originals", default=str(HERE / "photos" / "originals"),
                    help="folder of source photos (default: %(default)s)")
    ap.add_argument("--out", default=str(HERE / "photos" / "crops"),
                    help="output folder (default: %(default)s)")
    ap.add_argument("--per-photo", type=int, default=16,
                    help="crops per photo (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=0, help="base seed (default: %(default)s)")
    ap.add_argument("--size", type=int, default=256,
                    help="output side in pixels (default: %(default)s)")
    ap.add_argument("--min-scale", type=float, default=0.35,
                    help="smallest crop side / shorter photo side (default: %(default)s)")
    ap.add_argument("--max-scale", type=float, default=1.0,
                    help="largest crop side / shorter photo side (default: %(default)s)")
    ap.add_argument("--quality", type=int, default=90, help="JPEG quality (default: %(default)s)")
    ap.add_argument("--no-manifest", action="store_true",
                    help="do not write <out>_manifest.csv")
    args = ap.parse_args(argv)

    if not 0 < args.min_scale <= args.max_scale <= 1:
        ap.error("need 0 < --min-scale <= --max-scale <= 1")
    if args.per_photo < 1:
        ap.error("--per-photo must be >= 1")

    src_dir = pathlib.Path(args.originals)
    out_dir = pathlib.Path(args.out)
    photos = sorted(p for p in src_dir.iterdir()
                    if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not photos:
        print(f"no photos found in {src_dir}", file=sys.stderr)
        return 1
    stems = [p.stem for p in photos]
    if len(set(stems)) != len(stems):
        print("duplicate photo names (same stem, different suffix)", file=sys.stderr)
        return 1
    out_dir.mkdir(parents=True, exist_ok=True)

    expected = set()
    rows = []
    written = 0
    for photo in photos:
        with Image.open(photo) as im:
            im.load()
            rgb = im.convert("RGB")
        rng = photo_rng(args.seed, photo.stem)
        for k, (left, top, side, flip) in enumerate(
                crop_boxes(rgb.width, rgb.height, args.per_photo, rng,
                           args.min_scale, args.max_scale)):
            crop = rgb.crop((left, top, left + side, top + side))
            crop = crop.resize((args.size, args.size), Image.LANCZOS)
            if flip:
                crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
            name = f"{photo.stem}_{k}.jpg"
            expected.add(name)
            written += write_if_changed(out_dir / name, encode_jpeg(crop, args.quality))
            rows.append((name, photo.name, left, top, side, int(flip)))

    removed = 0
    for p in out_dir.iterdir():
        if p.is_file() and CROP_NAME.match(p.name) and p.name not in expected:
            p.unlink()
            removed += 1

    if not args.no_manifest:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["crop", "photo", "left", "top", "side", "hflip"])
        w.writerows(rows)
        manifest = out_dir.with_name(out_dir.name + "_manifest.csv")
        write_if_changed(manifest, buf.getvalue().encode("utf-8"))

    print(f"{len(photos)} photos -> {len(expected)} crops in {out_dir} "
          f"({written} written, {len(expected) - written} unchanged, {removed} stale removed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
