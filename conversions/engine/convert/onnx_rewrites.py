"""ONNX passes on the exported file before onnx2tf: ops XNNPACK lacks in int8 replaced by ones it has.

- ``divisions_as_products``: a float ``Div`` by a constant (an initializer or a ``Constant`` node) becomes a
  ``Mul`` by its reciprocal. XNNPACK has no int8 DIV kernel, so one division left in an int8 graph runs on
  the reference kernel; MUL is delegated. Done on the ONNX graph because a traced model's divisions (``x / 6``,
  ``x / x.shape[-1]``) are constants only after export. ``x * (1/c)`` differs from ``x / c`` by float rounding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from conversions.engine.convert.torch_rewrites import REWRITE_NOTE

_FLOAT = (np.float16, np.float32, np.float64)


def divisions_as_products(onnx_path: Path) -> list[str]:
    """Rewrites ``onnx_path`` in place; returns a note naming how many divisions became products, if any."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_path))
    graph = model.graph
    constants = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            constants[node.output[0]] = node.attribute[0].t
    taken = {t.name for t in graph.initializer} | {o for n in graph.node for o in n.output}
    count = 0
    for node in graph.node:
        if node.op_type != "Div" or node.input[1] not in constants:
            continue
        divisor = numpy_helper.to_array(constants[node.input[1]])
        # Integer Div truncates; a zero divisor gives inf/nan that a product would not reproduce.
        if divisor.dtype not in _FLOAT or not np.all(np.isfinite(divisor)) or np.any(divisor == 0):
            continue
        name = f"{node.input[1]}_reciprocal"
        while name in taken:
            name += "_"
        taken.add(name)
        graph.initializer.append(numpy_helper.from_array((1.0 / divisor).astype(divisor.dtype), name))
        node.op_type = "Mul"
        node.input[1] = name
        count += 1
    if not count:
        return []
    onnx.save(model, str(onnx_path))
    return [f"{REWRITE_NOTE}: division by a constant -> product by its reciprocal: {count} op{'s' * (count > 1)}"]
