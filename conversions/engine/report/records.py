"""Frozen dataclasses as JSON: ``to_json`` writes one, ``from_json`` reads one back leniently.

Reports are stored in a database by whichever engine version made them and read back by later ones, so
reading never fails on data: a missing key, a ``None`` or a value of the wrong type takes the field's
default, unknown keys are ignored, nested dataclasses and tuples of them are rebuilt, dict values keep
JSON types. Writing is ``dataclasses.asdict`` with tuples as lists.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T")
_MISSING = dataclasses.MISSING


def to_json(record: Any) -> Any:
    """A dataclass (or list/dict of them) as JSON-able values; tuples become lists."""
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        return {f.name: to_json(getattr(record, f.name)) for f in dataclasses.fields(record)}
    if isinstance(record, (list, tuple)):
        return [to_json(x) for x in record]
    if isinstance(record, dict):
        return {str(k): to_json(v) for k, v in record.items()}
    return record


def from_json(cls: type[T], data: Any) -> T:
    """``cls`` rebuilt from ``data`` (see the module docstring for what is forgiven)."""
    data = data if isinstance(data, dict) else {}
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            value = _coerce(_hints(cls)[f.name], data[f.name])
            if value is not _MISSING:
                kwargs[f.name] = value
    return cls(**kwargs)


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(hint: Any, value: Any) -> Any:
    """``value`` as ``hint`` wants it, or ``_MISSING`` (take the default) when it does not fit."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        for option in options:
            coerced = _coerce(option, value)
            if coerced is not _MISSING:
                return coerced
        return _MISSING
    if value is None:
        return _MISSING
    if hint is Any:
        return value
    if dataclasses.is_dataclass(hint):
        return from_json(hint, value) if isinstance(value, dict) else _MISSING
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return _MISSING
        args = typing.get_args(hint)
        item = args[0] if args else Any
        items = [_coerce(item, x) for x in value]
        return tuple(x for x in items if x is not _MISSING)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            return _MISSING
        (item,) = typing.get_args(hint) or (Any,)
        return [x for x in (_coerce(item, v) for v in value) if x is not _MISSING]
    if origin is dict:
        if not isinstance(value, dict):
            return _MISSING
        args = typing.get_args(hint)
        item = args[1] if len(args) == 2 else Any
        out = {str(k): _coerce(item, v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not _MISSING}
    if hint is float:
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else _MISSING
    if hint is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _MISSING
    if hint is bool:
        return value if isinstance(value, bool) else _MISSING
    if hint is str:
        return value if isinstance(value, str) else _MISSING
    return value
