"""TFLite Micro readiness of an int8 file: does every op exist there, how much RAM, the same answers?

The file runs in the real TFLite Micro interpreter (the ``tflite-micro`` wheel) on held-out inputs, in a
spawned child process, so a crash or a hang in the native library becomes a message on the run, never a
failed run (spawn, not fork: the parent has TensorFlow's threads). The arena is what TFLite Micro's
recording allocator reports it allocated; the outputs are compared with LiteRT's on the same raw inputs.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import tempfile
from dataclasses import replace
from typing import Any

import numpy as np

from conversions.engine.report.device_results import MicroTarget
from conversions.engine.report.html_tables import file_size

MICRO_SAMPLES = 4
"""Held-out inputs run in TFLite Micro: its reference kernels are slow (about a second for EfficientNet-Lite0)."""
TIMEOUT_S = 300.0
_ARENA = re.compile(r"Arena allocation total (\d+) bytes")
_MISSING_OP = re.compile(r"Didn't find op for builtin opcode '([A-Z0-9_]+)'")
NOT_FOR_MICRO = "not for microcontrollers"


def micro_readiness(model: bytes, inputs: np.ndarray, samples: int = MICRO_SAMPLES, timeout: float = TIMEOUT_S) -> MicroTarget:
    """``model`` in TFLite Micro on the first ``samples`` of ``inputs`` (float, in the model's layout)."""
    raw, litert_raw, quant = _litert_outputs(model, inputs[:samples])
    _, reference_raw, _ = _litert_outputs(model, inputs[:samples], reference_kernels=True)
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(model, raw, len(quant), child), daemon=True)
    proc.start()
    child.close()
    result: dict[str, Any] | None = None
    answered = parent.poll(timeout)
    try:
        result = parent.recv() if answered else None
    except EOFError:  # the child died before answering (a crash in the native library)
        result = None
    if not answered:
        proc.kill()
    proc.join()
    flash = len(model)
    if result is None:
        why = f"did not answer within {timeout:g} s" if not answered else f"crashed (exit code {proc.exitcode})"
        return MicroTarget(False, None, flash, (), None, None, 0, f"TFLite Micro {why}: {NOT_FOR_MICRO} as it is.")
    if result.get("error"):
        ops = tuple(result.get("missing_ops") or ())
        what = f"TFLite Micro has no kernel for {', '.join(ops)}" if ops else f"TFLite Micro refused it: {result['error']}"
        return MicroTarget(False, result.get("arena"), flash, ops, None, None, 0, f"{what}: {NOT_FOR_MICRO}.")
    outputs = result["outputs"]
    exact, diff = _compare(outputs, litert_raw, quant)
    _, reference_diff = _compare(outputs, reference_raw, quant)
    arena = result.get("arena")
    target = MicroTarget(True, arena, flash, (), round(diff, 6), exact, len(raw), "", round(reference_diff, 6))
    return replace(target, message=_supported_note(target))


def for_file(target: MicroTarget, model: bytes) -> MicroTarget:
    """``target``, measured on a file that differs from ``model`` only in its metadata, told for ``model``:
    the run checks the int8 file in TFLite Micro before its metadata is written, beside the accuracy guard.
    The arena is the metadata-free file's (the written file's layout moves it by a few bytes of alignment)."""
    moved = replace(target, flash_bytes=len(model))
    return replace(moved, message=_supported_note(moved)) if moved.supported else moved


def _supported_note(t: MicroTarget) -> str:
    exact = t.bit_exact
    return (f"runs in TFLite Micro: {_size(t.arena_bytes)} arena, {_size(t.flash_bytes)} flash, "
            f"{'bit-exact with' if exact else f'max |diff| {t.max_abs_diff_vs_litert:.4g} against'} LiteRT on "
            f"{t.samples} inputs ({t.max_abs_diff_vs_litert_reference:.4g} against LiteRT's reference kernels)")  # fmt: skip


def _compare(outputs: list[list[np.ndarray]], expected: list[list[np.ndarray]], quant: list[tuple]) -> tuple[bool, float]:
    """(bit-exact, largest dequantized difference) of TFLite Micro's raw outputs against another run's."""
    exact = all(np.array_equal(a, b) for per_a, per_b in zip(outputs, expected) for a, b in zip(per_a, per_b))
    diff = max(
        float(np.abs(_dequantize(a, q) - _dequantize(b, q)).max()) if a.size else 0.0
        for per_a, per_b in zip(outputs, expected)
        for a, b, q in zip(per_a, per_b, quant)
    )
    return exact, diff


def _size(n: int | None) -> str:
    return "unknown" if n is None else f"{file_size(n)} ({n:,} bytes)"


def _litert_outputs(
    model: bytes, inputs: np.ndarray, reference_kernels: bool = False
) -> tuple[list[np.ndarray], list[list[np.ndarray]], list[tuple]]:
    """Raw inputs in the model's input dtype, LiteRT's raw outputs (subgraph order), the outputs' quantization;
    with its default (optimized, XNNPACK) kernels, or its reference kernels, TFLite Micro's closest kin."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from conversions.engine.verify.interpreter import allocated_interpreter

    if reference_kernels:
        interp = Interpreter(model_content=model, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
        interp.allocate_tensors()
    else:  # where XNNPACK refuses a node, LiteRT's builtin kernels are the optimized reference
        interp, _ = allocated_interpreter(model)
    d_in = interp.get_input_details()[0]
    outs = interp.get_output_details()
    raw_inputs, raw_outputs = [], []
    for i in range(len(inputs)):
        x = _quantize(inputs[i : i + 1], d_in)
        interp.set_tensor(d_in["index"], x)
        interp.invoke()
        raw_inputs.append(x)
        raw_outputs.append([interp.get_tensor(d["index"]).copy() for d in outs])
    return raw_inputs, raw_outputs, [d["quantization"] for d in outs]


def _quantize(x: np.ndarray, d: dict[str, Any]) -> np.ndarray:
    dtype = d["dtype"]
    if np.dtype(dtype).kind == "f":
        return x.astype(dtype)
    scale, zero = d["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)


def _dequantize(x: np.ndarray, quantization: tuple) -> np.ndarray:
    scale, zero = quantization
    if np.dtype(x.dtype).kind == "f" or not scale:
        return x.astype(np.float64)
    return (x.astype(np.float64) - zero) * scale


def _child(model: bytes, raw_inputs: list[np.ndarray], n_outputs: int, conn: Any) -> None:
    """In the spawned process: TFLite Micro's native log goes to a file, parsed for the arena and missing ops."""
    with tempfile.TemporaryFile(mode="w+b") as log:
        saved = os.dup(2), os.dup(1)
        os.dup2(log.fileno(), 2)
        os.dup2(log.fileno(), 1)
        result: dict[str, Any] = {}
        try:
            from tflite_micro.python.tflite_micro import runtime

            interp = runtime.Interpreter.from_bytes(model)
            outputs = []
            for x in raw_inputs:
                interp.set_input(x, 0)
                interp.invoke()
                outputs.append([np.array(interp.get_output(k)) for k in range(n_outputs)])
            interp.print_allocations()
            result["outputs"] = outputs
        except Exception as exc:  # the native library's failures arrive as RuntimeError; each becomes a message
            result["error"] = str(exc) or type(exc).__name__
        finally:
            os.dup2(saved[0], 2)
            os.dup2(saved[1], 1)
        log.seek(0)
        text = log.read().decode("utf-8", errors="replace")
    arena = _ARENA.search(text)
    result["arena"] = int(arena.group(1)) if arena else None
    result["missing_ops"] = sorted(set(_MISSING_OP.findall(text)))
    conn.send(result)
    conn.close()

