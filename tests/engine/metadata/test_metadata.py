"""TFLite metadata inside the written files: read back from the real file, and the file runs as before."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conversions.engine.metadata import embed
from conversions.engine.pipeline import run_export
from conversions.engine.report.device_results import TENSOR_AXIS_LABELS
from conversions.engine.verify.interpreter import TFLiteModel, predict_many

from ..conftest import CLASSES, IMAGENET_MEAN, IMAGENET_STD


@pytest.fixture(scope="module")
def int8_run(trained_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("meta")
    labels = out / "labels.txt"
    labels.write_text("\n".join(CLASSES) + "\n")
    config = trained_model.config(output=str(out / "m_int8.tflite"))
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, labels_file=str(labels)))
    report = run_export(config)
    return report, (out / "m_int8.tflite").read_bytes()


def test_metadata_read_back_from_a_written_int8_file_matches_the_runs_settings(int8_run):
    report, content = int8_run
    info, files = embed.read(content)
    assert info is not None and info.min_parser_version == "1.0.0"
    image = info.inputs[0]
    assert image.image_size == (32, 32) and image.color_space == "RGB"
    # The imagenet preset: (x / 255 - mean) / std, i.e. (pixel - 255 * mean) / (255 * std).
    np.testing.assert_allclose(image.mean, IMAGENET_MEAN * 255, rtol=1e-5)
    np.testing.assert_allclose(image.std, IMAGENET_STD * 255, rtol=1e-5)
    (scores,) = info.outputs
    assert [(f.name, f.type) for f in scores.files] == [("labels.txt", TENSOR_AXIS_LABELS)]
    assert files["labels.txt"].decode().split() == list(CLASSES)
    embedded = report.variant("int8").metadata
    assert embedded.verified and embedded.outputs_unchanged and embedded.metadata == info
    assert embedded.labels_count == len(CLASSES)


def test_the_files_outputs_are_unchanged_by_adding_metadata(int8_run, trained_model):
    report, content = int8_run
    inputs = np.random.default_rng(1).standard_normal((6, 32, 32, 3)).astype(np.float32)
    stripped = _without_metadata(content)
    assert embed.read(stripped) == (None, {})
    with_meta = predict_many(TFLiteModel(content), inputs)[0]
    without = predict_many(TFLiteModel(stripped), inputs)[0]
    assert np.array_equal(with_meta, without)


def test_no_metadata_writes_a_plain_file(trained_model, tmp_path):
    config = trained_model.config(output=str(tmp_path / "plain.tflite"), variants=("dynamic",), metadata=False)
    report = run_export(config)
    assert embed.read((tmp_path / "plain.tflite").read_bytes()) == (None, {})
    assert report.variant("dynamic").metadata is None


def _without_metadata(content: bytes) -> bytes:
    """The same model with the metadata entry and buffer removed, re-packed by TensorFlow's own object API."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as fb

    tree = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(content, 0))
    entry = next(m for m in tree.metadata if m.name.decode() == embed.METADATA_NAME)
    tree.metadata = [m for m in tree.metadata if m is not entry]
    tree.buffers[entry.buffer].data = None
    b = flatbuffers.Builder(0)
    b.Finish(tree.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())
