"""Writes a self-contained Python module that regenerates the same calibration samples.

The module holds the sampled file list, the ``PreprocessSpec`` and a verbatim copy of ``preprocess.py``
(which imports only numpy and Pillow), so ``python my_dataset.py --output x.npz`` writes the same arrays as
``representative_data --output x.npz`` on a machine without quantweb, and ``from my_dataset import
representative_dataset`` feeds ``TFLiteConverter`` directly.
"""

from __future__ import annotations

import pprint
from pathlib import Path

from conversions.engine.data import preprocess

FUTURE = "from __future__ import annotations\n"

HEADER = '''#!/usr/bin/env python3
"""Representative dataset written by quantweb's ``representative_data --create-module``.

{count} calibration images from {root}
preprocess: {description}; layout {layout}

Needs only numpy and Pillow:

    python {filename} --output calib.npz       # the same arrays as ``representative_data --output``
    python {filename} --data-dir /moved/here   # when the images live somewhere else now

and for TensorFlow Lite:

    from {module} import representative_dataset
    converter.representative_dataset = representative_dataset
"""

'''

FOOTER = '''

# ------------------------------------------------------------------------------- this dataset's sample

DATA_DIR = {root!r}
LAYOUT = {layout!r}
MAX_PIXELS = {max_pixels!r}
SPEC_JSON = {spec_json!r}
SPEC = PreprocessSpec.from_dict({spec_dict!r})
FILES = {files}


def samples(data_dir=None):
    """Yields (relative path, preprocessed array) for each file that can be read, in the sampled order."""
    base = data_dir or DATA_DIR
    for name in FILES:
        path = name if os.path.isabs(name) else os.path.join(base, name)
        try:
            image = load_image(path, SPEC, SPEC.channels, MAX_PIXELS)
        except ImageReadError as err:
            print(f"skipped {{path}}: {{err}}", file=sys.stderr)
            continue
        yield name, to_layout(transform(image, SPEC), LAYOUT)


def representative_dataset(data_dir=None):
    """For ``TFLiteConverter.representative_dataset``: one ``[sample[None]]`` per image."""
    for _, array in samples(data_dir):
        yield [array[None]]


def main(argv=None):
    import argparse
    import io

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, help="the .npz file to write (samples, files, spec)")
    parser.add_argument("--data-dir", default=None, help=f"where the images are (default {{DATA_DIR}})")
    args = parser.parse_args(argv)
    names, arrays = [], []
    for name, array in samples(args.data_dir):
        names.append(name)
        arrays.append(array)
    if not arrays:
        raise SystemExit(f"none of the {{len(FILES)}} images could be read below {{args.data_dir or DATA_DIR}}")
    buffer = io.BytesIO()
    np.savez(buffer, samples=np.stack(arrays), files=np.array(names), spec=np.array(SPEC_JSON))
    with open(args.output, "wb") as fh:
        fh.write(buffer.getvalue())
    print(f"wrote {{len(arrays)}} samples {{arrays[0].shape}} {{arrays[0].dtype}} to {{args.output}}")


if __name__ == "__main__":
    main()
'''


def module_source(
    *,
    root: str,
    files: list[str],
    spec: preprocess.PreprocessSpec,
    spec_json: str,
    layout: str,
    max_pixels: int,
    filename: str,
) -> str:
    """The text of the standalone module; ``files`` are relative to ``root`` (or absolute)."""
    body = Path(preprocess.__file__).read_text(encoding="utf-8")
    body = body.split(FUTURE, 1)[1]  # drop preprocess.py's docstring; the header has its own
    header = HEADER.format(
        count=len(files), root=root, description=spec.describe(), layout=layout, filename=filename,
        module=Path(filename).stem,
    )
    footer = FOOTER.format(
        root=root, layout=layout, max_pixels=max_pixels, spec_json=spec_json, spec_dict=spec.to_dict(),
        files=pprint.pformat(files, width=110),
    )
    return header + FUTURE + "\nimport sys\n" + body + footer
