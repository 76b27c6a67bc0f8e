"""Metadata into a ``.tflite`` and back out, as tflite-support's ``MetadataPopulator`` lays it out.

The ``ModelMetadata`` buffer becomes one more buffer of the model, named by a ``TFLITE_METADATA`` entry of
the model's ``metadata`` list; associated files (the labels) are a zip appended after the flatbuffer, which
interpreters ignore and zip readers find. The model is re-packed with the TFLite schema's object API
(TensorFlow's generated ``schema_py_generated``), its constant buffers kept 16-byte aligned as the converter
writes them.
"""

from __future__ import annotations

import io
import zipfile

import flatbuffers

from conversions.engine.metadata import schema
from conversions.engine.report.device_results import ModelInfo

METADATA_NAME = "TFLITE_METADATA"
TFLITE_IDENTIFIER = b"TFL3"
_BUFFER_ALIGNMENT = 16


def _schema():  # TensorFlow is heavy to import; only the writer needs its generated schema.
    from tensorflow.lite.python import schema_py_generated

    return schema_py_generated


def attach(model: bytes, info: ModelInfo, files: dict[str, bytes] | None = None) -> bytes:
    """``model`` (a plain ``.tflite``, nothing appended) with ``info`` as its metadata, replacing any, and
    ``files`` zipped after it."""
    fb = _schema()
    tree = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(model, 0))
    buffer = fb.BufferT()
    buffer.data = schema.encode(info)
    tree.buffers = list(tree.buffers or [])
    tree.metadata = [m for m in tree.metadata or [] if _name(m) != METADATA_NAME]
    tree.buffers.append(buffer)
    entry = fb.MetadataT()
    entry.name, entry.buffer = METADATA_NAME, len(tree.buffers) - 1
    tree.metadata.append(entry)
    tree.buffers = [_Aligned(b) for b in tree.buffers]
    builder = flatbuffers.Builder(len(model) + 4096)
    builder.Finish(tree.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    out = io.BytesIO(bytes(builder.Output()))
    if files:
        out.seek(0, io.SEEK_END)
        with zipfile.ZipFile(out, "a") as zf:
            for name, content in files.items():
                zf.writestr(name, content)
    return out.getvalue()


def read(model: bytes) -> tuple[ModelInfo | None, dict[str, bytes]]:
    """The model's metadata (None without any) and its associated files by name."""
    fb = _schema()
    root = fb.Model.GetRootAsModel(model, 0)
    info = None
    for i in range(root.MetadataLength()):
        entry = root.Metadata(i)
        if entry.Name() and entry.Name().decode() == METADATA_NAME:
            info = schema.decode(root.Buffers(entry.Buffer()).DataAsNumpy().tobytes())
    files: dict[str, bytes] = {}
    if zipfile.is_zipfile(io.BytesIO(model)):
        with zipfile.ZipFile(io.BytesIO(model)) as zf:
            files = {name: zf.read(name) for name in zf.namelist()}
    return info, files


def _name(entry) -> str:
    name = entry.name
    return name.decode() if isinstance(name, bytes) else str(name or "")


class _Aligned:
    """A ``BufferT`` that packs its bytes 16-byte aligned (the generated code aligns them to 1)."""

    def __init__(self, buffer) -> None:
        self.buffer = buffer

    def Pack(self, builder: flatbuffers.Builder) -> int:
        fb = _schema()
        data = self.buffer.data
        offset = None
        if data is not None:
            raw = data.tobytes() if hasattr(data, "tobytes") else bytes(data)
            builder.StartVector(1, len(raw), _BUFFER_ALIGNMENT)
            builder.head -= len(raw)
            builder.Bytes[builder.head : builder.head + len(raw)] = raw
            offset = builder.EndVector()
        fb.BufferStart(builder)
        if offset is not None:
            fb.BufferAddData(builder, offset)
        fb.BufferAddOffset(builder, self.buffer.offset)
        fb.BufferAddSize(builder, self.buffer.size)
        return fb.BufferEnd(builder)
