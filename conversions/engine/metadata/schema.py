"""The TFLite metadata flatbuffer (``ModelMetadata``, file identifier ``M001``) written and read with
``flatbuffers`` directly.

The layout is that of ``metadata_schema.fbs`` in tensorflow/tflite-support (Apache-2.0), the schema Android's
Task Library and MediaPipe read: tables are addressed by field slot, in the schema's declaration order, and
a union takes two slots (its type, then its value). Only the tables quantweb writes are covered; the
``tflite-support`` package itself cannot be installed beside the converter's pins, so it is not used.
"""

from __future__ import annotations

import flatbuffers
from flatbuffers import number_types as N
from flatbuffers.table import Table

from conversions.engine.report.device_results import AssociatedFile, ModelInfo, TensorInfo

FILE_IDENTIFIER = b"M001"

# Field slots, as declared in metadata_schema.fbs.
_MODEL = {"name": 0, "description": 1, "version": 2, "subgraphs": 3, "author": 4, "license": 5, "min_parser_version": 7}
_SUBGRAPH = {"name": 0, "description": 1, "inputs": 2, "outputs": 3}
_TENSOR = {"name": 0, "description": 1, "content": 3, "process_units": 4, "stats": 5, "files": 6}
_CONTENT_TYPE, _CONTENT_VALUE = 0, 1
_PROCESS_TYPE, _PROCESS_VALUE = 0, 1
_FILE = {"name": 0, "description": 1, "type": 2}
FEATURE_PROPERTIES, IMAGE_PROPERTIES = 1, 2
"""``ContentProperties`` union members."""
NORMALIZATION_OPTIONS = 1
"""``ProcessUnitOptions`` union member."""
COLOR_SPACES = {"UNKNOWN": 0, "RGB": 1, "GRAYSCALE": 2}


def encode(info: ModelInfo) -> bytes:
    """``info`` as a finished ``ModelMetadata`` buffer with the ``M001`` identifier."""
    b = flatbuffers.Builder(1024)
    inputs = _vector(b, [_tensor(b, t) for t in info.inputs])
    outputs = _vector(b, [_tensor(b, t) for t in info.outputs])
    subgraph = _table(b, {_SUBGRAPH["inputs"]: inputs, _SUBGRAPH["outputs"]: outputs})
    subgraphs = _vector(b, [subgraph])
    strings = {k: b.CreateString(getattr(info, k)) for k in ("name", "description", "version", "author", "license")
               if getattr(info, k)}  # fmt: skip
    strings["min_parser_version"] = b.CreateString(info.min_parser_version)
    root = _table(b, {**{_MODEL[k]: v for k, v in strings.items()}, _MODEL["subgraphs"]: subgraphs})
    b.Finish(root, file_identifier=FILE_IDENTIFIER)
    return bytes(b.Output())


def decode(buf: bytes) -> ModelInfo:
    """The ``ModelMetadata`` in ``buf``; raises ``ValueError`` if it is not one."""
    if len(buf) < 8 or bytes(buf[4:8]) != FILE_IDENTIFIER:
        raise ValueError("not a TFLite metadata buffer (no M001 identifier)")
    root = _root(buf)
    subgraphs = _tables(root, _MODEL["subgraphs"])
    subgraph = subgraphs[0] if subgraphs else None
    return ModelInfo(
        **{k: _string(root, _MODEL[k]) for k in ("name", "description", "version", "author", "license")},
        inputs=tuple(_read_tensor(t) for t in _tables(subgraph, _SUBGRAPH["inputs"])) if subgraph else (),
        outputs=tuple(_read_tensor(t) for t in _tables(subgraph, _SUBGRAPH["outputs"])) if subgraph else (),
        min_parser_version=_string(root, _MODEL["min_parser_version"]),
    )


# --- writing -------------------------------------------------------------------------------------------


def _table(b: flatbuffers.Builder, offsets: dict[int, int], scalars: dict[int, tuple[str, int]] | None = None) -> int:
    """A table of offset fields (and ``(Prepend kind, value)`` scalars) by slot; children must be built."""
    slots = [*offsets, *(scalars or {})]
    b.StartObject(max(slots) + 1 if slots else 0)
    for slot, (kind, value) in (scalars or {}).items():
        getattr(b, f"Prepend{kind}Slot")(slot, value, 0 if value else 1)  # a default-valued scalar is still written
    for slot, offset in offsets.items():
        b.PrependUOffsetTRelativeSlot(slot, offset, 0)
    return b.EndObject()


def _vector(b: flatbuffers.Builder, offsets: list[int]) -> int:
    b.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        b.PrependUOffsetTRelative(offset)
    return b.EndVector()


def _floats(b: flatbuffers.Builder, values: tuple[float, ...]) -> int:
    b.StartVector(4, len(values), 4)
    for v in reversed(values):
        b.PrependFloat32(v)
    return b.EndVector()


def _tensor(b: flatbuffers.Builder, t: TensorInfo) -> int:
    fields: dict[int, int] = {}
    if t.name:
        fields[_TENSOR["name"]] = b.CreateString(t.name)
    if t.description:
        fields[_TENSOR["description"]] = b.CreateString(t.description)
    fields[_TENSOR["content"]] = _content(b, t)
    if t.mean and t.std:
        norm = _table(b, {0: _floats(b, t.mean), 1: _floats(b, t.std)})
        unit = _table(b, {_PROCESS_VALUE: norm}, {_PROCESS_TYPE: ("Uint8", NORMALIZATION_OPTIONS)})
        fields[_TENSOR["process_units"]] = _vector(b, [unit])
    if t.stats_min or t.stats_max:
        fields[_TENSOR["stats"]] = _table(b, {0: _floats(b, t.stats_max), 1: _floats(b, t.stats_min)})
    if t.files:
        fields[_TENSOR["files"]] = _vector(b, [_file(b, f) for f in t.files])
    return _table(b, fields)


def _content(b: flatbuffers.Builder, t: TensorInfo) -> int:
    if t.image_size:
        width, height = t.image_size
        size = _table(b, {}, {0: ("Uint32", width), 1: ("Uint32", height)})
        props = _table(b, {1: size}, {0: ("Int8", COLOR_SPACES.get(t.color_space, 0))})
        kind = IMAGE_PROPERTIES
    else:
        props, kind = _table(b, {}), FEATURE_PROPERTIES
    return _table(b, {_CONTENT_VALUE: props}, {_CONTENT_TYPE: ("Uint8", kind)})


def _file(b: flatbuffers.Builder, f: AssociatedFile) -> int:
    name, description = b.CreateString(f.name), b.CreateString(f.description)
    return _table(b, {_FILE["name"]: name, _FILE["description"]: description}, {_FILE["type"]: ("Int8", f.type)})


# --- reading -------------------------------------------------------------------------------------------


def _root(buf: bytes) -> Table:
    return Table(bytearray(buf), flatbuffers.encode.Get(N.UOffsetTFlags.packer_type, bytearray(buf), 0))


def _field(t: Table, slot: int) -> int:
    return t.Offset(4 + 2 * slot)


def _string(t: Table, slot: int) -> str:
    o = _field(t, slot)
    return t.String(o + t.Pos).decode("utf-8") if o else ""


def _scalar(t: Table, slot: int, flags: type) -> int:
    o = _field(t, slot)
    return t.Get(flags, o + t.Pos) if o else 0


def _sub(t: Table, slot: int) -> Table | None:
    o = _field(t, slot)
    return Table(t.Bytes, t.Indirect(o + t.Pos)) if o else None


def _tables(t: Table, slot: int) -> list[Table]:
    o = _field(t, slot)
    if not o:
        return []
    start = t.Vector(o)
    return [Table(t.Bytes, t.Indirect(start + 4 * i)) for i in range(t.VectorLen(o))]


def _read_floats(t: Table | None, slot: int) -> tuple[float, ...]:
    o = _field(t, slot) if t is not None else 0
    if not o:
        return ()
    start = t.Vector(o)
    return tuple(t.Get(N.Float32Flags, start + 4 * i) for i in range(t.VectorLen(o)))


def _read_tensor(t: Table) -> TensorInfo:
    image_size: tuple[int, ...] = ()
    color_space = ""
    content = _sub(t, _TENSOR["content"])
    if content is not None and _scalar(content, _CONTENT_TYPE, N.Uint8Flags) == IMAGE_PROPERTIES:
        props = _sub(content, _CONTENT_VALUE)
        names = {v: k for k, v in COLOR_SPACES.items()}
        color_space = names.get(_scalar(props, 0, N.Int8Flags), "UNKNOWN")
        size = _sub(props, 1)
        if size is not None:
            image_size = (_scalar(size, 0, N.Uint32Flags), _scalar(size, 1, N.Uint32Flags))
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    for unit in _tables(t, _TENSOR["process_units"]):
        if _scalar(unit, _PROCESS_TYPE, N.Uint8Flags) == NORMALIZATION_OPTIONS:
            norm = _sub(unit, _PROCESS_VALUE)
            mean, std = _read_floats(norm, 0), _read_floats(norm, 1)
    stats = _sub(t, _TENSOR["stats"])
    files = tuple(
        AssociatedFile(_string(f, _FILE["name"]), _string(f, _FILE["description"]), _scalar(f, _FILE["type"], N.Int8Flags))
        for f in _tables(t, _TENSOR["files"])
    )
    return TensorInfo(
        name=_string(t, _TENSOR["name"]),
        description=_string(t, _TENSOR["description"]),
        image_size=image_size,
        color_space=color_space,
        mean=mean,
        std=std,
        stats_min=_read_floats(stats, 1),
        stats_max=_read_floats(stats, 0),
        files=files,
    )
