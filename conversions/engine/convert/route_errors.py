"""What a failed onnx2tf route says: its error cut to size, the ONNX op at fault, and what the user can try."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from conversions.engine.convert.onnx_export import exported_opset

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def short_error(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    text = " ".join(text.split())
    return f"{type(err).__name__}: {text[:400]}"


def failing_op(err: BaseException) -> dict[str, str]:
    """Digs the ONNX op name/type out of onnx2tf's printed error or the TF layer name."""
    text = getattr(err, "onnx2tf_output", "") + "\n" + str(err)
    found: dict[str, str] = {}
    name = re.search(r"onnx_op_name:\s*(\S+)", text) or re.search(r"name='(?:wa)?(/[^']+)'", text)
    kind = re.search(r"onnx_op_type:\s*(\S+)", text)
    if name:
        found["onnx_op"] = name.group(1)
    if kind:
        found["onnx_op_type"] = kind.group(1)
    return found


_ADVICE = (
    (r"\bErf\b|Gelu|GELU", "an Erf outside nn.GELU (the engine exports nn.GELU as one Gelu node at opset 20) has "
     "no TFLite kernel: use nn.GELU, or nn.GELU(approximate='tanh')"),
    (r"SplitV|Split", "a split/chunk with uneven or computed sizes: split with fixed sizes (torch.split(x, [a, b], dim))"),
    (r"ShapeInferenceError|eraseOutput", "onnxsim cannot fold this graph; shapes computed in forward() from x.shape "
     "(anchor grids, 'same' padding) can be precomputed as buffers for the fixed input size"),
    (r"Reshape|Transpose|channel_shuffle", "a reshape/transpose on 5-D tensors (channel shuffle): write it as "
     "x.view(b, g, c // g, h, w).transpose(1, 2).reshape(b, c, h, w) with fixed sizes, or replace it by a 1x1 conv"),
    (r"\bPad\b|pads", "dynamic 'same' padding: use nn.ZeroPad2d with fixed amounts before the conv"),
    (r"Add|Mul|Sub|Div", "an elementwise op whose operands onnx2tf laid out differently (NCHW vs NHWC): "
     "make both operands 4-D with explicit shapes (x.view(b, c, 1, 1) rather than broadcasting a 2-D tensor)"),
)


def failure_message(onnx_path: Path, attempts: list[dict[str, Any]]) -> str:
    ops = sorted({a["onnx_op"] for a in attempts if a.get("onnx_op")})
    tried = "; ".join(
        f"{a['route']} ({a.get('mode', 'strict')}) failed in {a.get('stage', 'onnx2tf')}"
        + (f" at {a['onnx_op']}" if a.get("onnx_op") else "")
        + f": {a['error']}"
        for a in attempts
    )
    where = f" at ONNX op {', '.join(ops)}" if ops else ""
    text = " ".join(f"{a.get('onnx_op_type', '')} {a.get('onnx_op', '')} {a['error']}" for a in attempts)
    advice = [hint for pattern, hint in _ADVICE if re.search(pattern, text)]
    todo = "; ".join(dict.fromkeys(advice)) if advice else "replace the op named above in the model with standard ops"
    routes = len({a["route"] for a in attempts})
    return (
        f"onnx2tf could not convert {onnx_path.name}{where} by any of {routes} routes ({tried}). "
        f"What to try: {todo}. To report it, export the ONNX file yourself (torch.onnx.export(model, x, "
        f"'model.onnx', opset_version={exported_opset(onnx_path)})) and attach it with this message."
    )
