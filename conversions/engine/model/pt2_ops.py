"""The graph ops an untrusted ``torch.export`` program may hold: what a vision model computes, nothing else.

An archive with no pickled payloads (``pt2_archive``) deserialises without running code from the file, but
its graph is then *executed*: by the check of the input shape, ONNX export and verification. ``torch.export``'s
verifier lets through any non-mutating aten op, and some of those reach outside the tensors (``aten::from_file``
reads a file, others allocate unbounded memory or call into custom kernels). So an untrusted program is run
only when every node is a placeholder, a constant (``get_attr``), the output, or a call of an op in
``ALLOWED_OPS`` (or an in-place form of one) or of Python's ``operator`` arithmetic on sizes. Custom ops
(``torchvision::nms``), higher-order ops (control flow, ``wrap_with_set_grad_enabled``) and everything else
need a staff member's trust.

What is trusted, and why: an untrusted archive is parsed first in the sandbox (``sandbox.py``: no secrets, no
network, another uid), which checks the ops and answers only a verdict. The worker then parses the same file
itself, because a graph cannot come back as plain tensors. It trusts that parse because ``pt2_archive`` has
refused every archive whose payloads would be unpickled, so what remains is torch's JSON deserialiser and raw
tensor bytes (the code the child just survived), and because the sample inputs (a pickle) are left out. It
does not take the child's word for the ops: it checks them again before anything in the graph runs.
"""

from __future__ import annotations

import operator
from pathlib import Path

import torch

from conversions.engine.errors import CheckpointError

ALLOWED_OPS = frozenset(
    f"aten::{name}"
    for name in """
    conv1d conv2d conv3d convolution _convolution conv_transpose1d conv_transpose2d conv_transpose3d
    linear addmm mm bmm matmul baddbmm einsum scaled_dot_product_attention
    batch_norm _native_batch_norm_legit_no_training _native_batch_norm_legit native_batch_norm layer_norm
    native_layer_norm group_norm native_group_norm instance_norm rms_norm local_response_norm
    relu relu6 leaky_relu prelu _prelu_kernel gelu silu mish elu selu celu hardswish hardsigmoid hardtanh
    sigmoid tanh softplus softsign log_sigmoid threshold glu
    max_pool1d max_pool2d max_pool3d max_pool2d_with_indices avg_pool1d avg_pool2d avg_pool3d
    adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d _adaptive_avg_pool2d adaptive_max_pool2d
    add sub rsub mul div true_divide floor_divide remainder neg abs pow sqrt rsqrt exp log log2 reciprocal
    square sign floor ceil round trunc erf clamp clamp_min clamp_max clip minimum maximum where
    eq ne lt le gt ge logical_and logical_or logical_not bitwise_and bitwise_or bitwise_not
    sum mean amax amin max min argmax argmin prod var std var_mean norm linalg_vector_norm cumsum
    softmax _softmax log_softmax _log_softmax _safe_softmax
    cat concat concatenate stack hstack vstack view _unsafe_view reshape permute transpose t flatten unflatten
    squeeze unsqueeze expand expand_as repeat tile slice select split split_with_sizes chunk unbind narrow
    index index_select gather roll flip contiguous clone alias detach lift_fresh_copy _to_copy to type_as
    pixel_shuffle pixel_unshuffle channel_shuffle native_channel_shuffle
    upsample_nearest1d upsample_nearest2d upsample_nearest3d upsample_bilinear2d upsample_bicubic2d
    upsample_linear1d _upsample_bilinear2d_aa _upsample_nearest_exact2d interpolate
    pad constant_pad_nd reflection_pad1d reflection_pad2d replication_pad1d replication_pad2d
    dropout feature_dropout alpha_dropout feature_alpha_dropout native_dropout
    zeros zeros_like ones ones_like full full_like new_zeros new_ones new_full empty_like arange scalar_tensor
    masked_fill fill topk sort
    sym_size sym_numel sym_stride sym_storage_offset _assert_scalar _assert_tensor_metadata
    sym_constrain_range sym_constrain_range_for_size _assert_async
    """.split()
)
"""Every op by its schema name (``aten::conv2d``); ``_`` forms (``aten::relu_``) of these are allowed too."""

ALLOWED_FUNCTIONS = frozenset(
    getattr(operator, name)
    for name in "getitem add sub mul floordiv truediv mod neg pow eq ne lt le gt ge and_ or_ not_".split()
)
"""``operator`` calls that a program exported with symbolic sizes uses on ints, and ``getitem`` on tuples."""


def op_name(target: object) -> str:
    """``aten::conv2d`` for an op overload, ``_operator.getitem`` for a Python function, else its repr."""
    schema = getattr(target, "_schema", None)
    if schema is not None:
        return str(schema.name)
    module, name = getattr(target, "__module__", None), getattr(target, "__name__", None)
    return f"{module}.{name}" if module and name else repr(target)


def _allowed(node: torch.fx.Node) -> bool:
    if node.op in ("placeholder", "output", "get_attr"):
        return True
    if node.op != "call_function":
        return False
    if node.target in ALLOWED_FUNCTIONS:
        return True
    if not isinstance(node.target, torch._ops.OpOverload):
        return False
    name = op_name(node.target)
    return name in ALLOWED_OPS or (name.endswith("_") and name[:-1] in ALLOWED_OPS)


def unlisted_ops(program: torch.export.ExportedProgram) -> list[str]:
    """The op names in ``program``'s graph (and any nested graph) that ``ALLOWED_OPS`` does not list, sorted."""
    found = set()
    for module in program.graph_module.modules():
        graph = getattr(module, "graph", None)
        if isinstance(graph, torch.fx.Graph):
            found.update(
                op_name(n.target) if n.op == "call_function" else f"{n.op} {n.target}"
                for n in graph.nodes
                if not _allowed(n)
            )
    return sorted(found)


def refuse_unlisted_ops(program: torch.export.ExportedProgram, path: Path) -> None:
    """A ``CheckpointError`` naming the ops of ``program`` that ``ALLOWED_OPS`` does not list, if any."""
    unlisted = unlisted_ops(program)
    if unlisted:
        more = f" and {len(unlisted) - 8} more" if len(unlisted) > 8 else ""
        raise CheckpointError(
            f"refused to run the torch.export program {path}: its graph calls {', '.join(unlisted[:8])}{more}, which "
            "an untrusted program may not (only the ops a vision model computes are allowed: convolutions, "
            "matmuls, norms, activations, pooling, arithmetic, reshapes, resizing). Export the model without "
            "them, or have a staff member trust {checkpoint} ({trust_checkpoint}) if you trust its source.",
            field="trust_checkpoint",
        )
