"""Copy the real photographs bundled inside scikit-image, matplotlib and
scikit-learn wheels into ``demo/photos/originals/`` as JPEG.

This is a one-off provenance script, not part of the pipeline: run it from a
throwaway venv that has the three packages installed, e.g.

    python3 -m venv /tmp/photovenv
    /tmp/photovenv/bin/pip install scikit-image matplotlib scikit-learn
    /tmp/photovenv/bin/python demo/photos/collect_originals.py

Only files that ship inside the installed packages are read (no pooch /
network fetches). Non-photographs (text scans, masks, logos, synthetic
phantoms, icons) are deliberately not in the list below.
"""
import argparse
import importlib
import pathlib
import shutil

from PIL import Image

# (output stem, package, path relative to the package directory)
PHOTOS = [
    ("astronaut", "skimage", "data/astronaut.png"),
    ("brick", "skimage", "data/brick.png"),
    ("camera", "skimage", "data/camera.png"),
    ("chelsea", "skimage", "data/chelsea.png"),
    ("clock", "skimage", "data/clock_motion.png"),
    ("coffee", "skimage", "data/coffee.png"),
    ("coins", "skimage", "data/coins.png"),
    ("grass", "skimage", "data/grass.png"),
    ("gravel", "skimage", "data/gravel.png"),
    ("hubble_deep_field", "skimage", "data/hubble_deep_field.jpg"),
    ("immunohistochemistry", "skimage", "data/ihc.png"),
    ("moon", "skimage", "data/moon.png"),
    ("motorcycle_left", "skimage", "data/motorcycle_left.png"),
    ("retina", "skimage", "data/retina.jpg"),
    ("rocket", "skimage", "data/rocket.jpg"),
    ("grace_hopper", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
    ("china", "sklearn", "datasets/images/china.jpg"),
    ("flower", "sklearn", "datasets/images/flower.jpg"),
]

MAX_SIDE = 1024
QUALITY = 92


def main():
    here = pathlib.Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(here / "originals"))
    args = ap.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for stem, pkg, rel in PHOTOS:
        mod = importlib.import_module(pkg)
        src = pathlib.Path(mod.__file__).parent / rel
        dst = out / f"{stem}.jpg"
        im = Image.open(src)
        im.load()
        if im.format == "JPEG" and max(im.size) <= MAX_SIDE:
            # Already a small JPEG: copy the bytes, no second lossy encode.
            shutil.copyfile(src, dst)
            print(f"{dst.name:28s} {im.size[0]}x{im.size[1]} {im.mode:3s} <- {pkg} {mod.__version__} {rel} (copied)")
            continue
        mode = "L" if im.mode in ("L", "I", "I;16") else "RGB"
        im = im.convert(mode)
        if max(im.size) > MAX_SIDE:
            k = MAX_SIDE / max(im.size)
            im = im.resize((round(im.width * k), round(im.height * k)), Image.LANCZOS)
        im.save(dst, "JPEG", quality=QUALITY, optimize=True)
        print(f"{dst.name:28s} {im.size[0]}x{im.size[1]} {mode:3s} <- {pkg} {mod.__version__} {rel}")


if __name__ == "__main__":
    main()
