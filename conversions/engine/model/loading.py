"""Checkpoint + architecture -> an eval-mode ``nn.Module`` that accepts the declared input shape.

Routes, chosen from the file and ``--model``:
- a state dict (possibly wrapped in ``{"state_dict": ...}``/``{"model": ...}``, with ``module.`` prefixes)
  loaded into the architecture a factory builds (``pkg.mod:factory``, ``file.py:factory`` or a built-in);
- a ``torch.export`` program (``.pt2``), which carries its own graph (checked first by ``pt2_archive``);
- a whole pickled ``nn.Module``, only with ``trust_checkpoint`` because unpickling runs code;
- a built-in name with no checkpoint: the packaged pretrained weights.

Every route that runs code from outside the engine needs ``trust_checkpoint`` (``code_to_trust`` says which
and why): an architecture that is not a built-in name (a file or a module is imported and its factory
called), a ``.pt2`` program with pickled or opaque payloads (``torch.export.load`` unpickles what the archive
declares) and a pickled module. The CLI's ``--trust-checkpoint`` and a staff member's trust in the portal
set it; nothing else does.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
import pickle
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable

import torch
import torch.nn as nn

from conversions.engine.config import ModelSpec
from conversions.engine.errors import CheckpointError
from conversions.engine.model.builtin import BUILTIN_MODELS, get_builtin
from conversions.engine.model.pt2_archive import pickled_payloads, without_sample_inputs
from conversions.engine.model.pt2_ops import refuse_unlisted_ops
from conversions.engine.model.sandbox import check_program_isolated, load_state_isolated

log = logging.getLogger("quantweb.engine")

_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net", "network", "weights", "ema")
_PREFIXES = ("module.", "_orig_mod.", "model.")


@dataclass
class LoadedModel:
    module: nn.Module
    route: str
    """``state_dict``, ``exported_program``, ``pickled_module`` or ``builtin``."""
    input_shape: tuple[int, ...]
    description: str
    preprocess_hint: str | None = None
    class_names: list[str] | None = None
    """Names by output index that come with the model (a built-in model's ImageNet classes)."""
    prefixes_stripped: tuple[str, ...] = ()
    """Key prefixes taken off the state dict so it fits the architecture (``module.``, ``_orig_mod.``, ``model.``)."""
    output_names: tuple[str, ...] = ()
    """A model whose forward returns a dict: its keys, in the order of the tuple the wrapper returns."""


def code_to_trust(spec: ModelSpec) -> list[str]:
    """Why loading ``spec`` would run code that did not ship with the engine (empty: nothing would)."""
    reasons = []
    if spec.model and get_builtin(spec.model) is None:
        reasons.append(f"the architecture {spec.model!r} is imported and its factory called")
    if spec.checkpoint and Path(spec.checkpoint).suffix.lower() == ".pt2" and Path(spec.checkpoint).is_file():
        pickled = pickled_payloads(Path(spec.checkpoint))
        if pickled:
            reasons.append(
                f"the torch.export program {Path(spec.checkpoint).name} carries payloads that loading unpickles "
                f"({_few(pickled, 3)})"
            )
    return reasons


def require_trust(spec: ModelSpec) -> None:
    """Refuses, before anything is imported or unpickled, a spec that runs code without ``trust_checkpoint``."""
    reasons = code_to_trust(spec)
    if reasons and not spec.trust_checkpoint:
        raise CheckpointError(
            f"refused to load: {'; '.join(reasons)}, which runs code from outside quantweb. It needs "
            "{trust_checkpoint} first, given only for files and code whose source you trust; a state dict "
            f"with a built-in architecture ({', '.join(BUILTIN_MODELS)}) needs no trust.",
            field="trust_checkpoint",
        )


def load_model(spec: ModelSpec) -> LoadedModel:
    """Loads and checks the model; every failure is a ``CheckpointError`` naming the file, key or module."""
    require_trust(spec)
    builtin = get_builtin(spec.model)
    if spec.checkpoint is None:
        if builtin is None:
            raise CheckpointError(
                "no checkpoint given; pass {checkpoint} path/to/weights.pth (with {model} for a state dict), "
                f"or {{model}} with a built-in name ({', '.join(BUILTIN_MODELS)})."
            )
        module = builtin.build(pretrained=True, **spec.model_kwargs)
        loaded = LoadedModel(module, "builtin", spec.input_shape, builtin.description, builtin.preprocess,
                             builtin.class_names(spec.model_kwargs))  # fmt: skip
    else:
        loaded = _load_checkpoint(spec)
        if builtin is not None:
            loaded.preprocess_hint = builtin.preprocess
    if loaded.route != "exported_program":  # a torch.export module refuses .eval(); see _load_exported_program
        loaded.module.eval()
    out = check_input_shape(loaded.module, loaded.input_shape, spec.checkpoint or spec.model or "model")
    if isinstance(out, dict):  # segmentation models (torchvision's return {"out": ..., "aux": ...})
        loaded.output_names = tuple(str(k) for k in out)
        loaded.module = DictOutputs(loaded.module, list(out)).eval()
        loaded.description += f", dict outputs {', '.join(loaded.output_names)} exported as a tuple in that order"
    return loaded


class DictOutputs(nn.Module):
    """Returns the wrapped model's dict outputs as a tuple (ONNX export and TFLite take tuples, not dicts)."""

    def __init__(self, inner: nn.Module, keys: list[Any]) -> None:
        super().__init__()
        self.inner = inner
        self.keys = list(keys)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.inner(x)
        return tuple(out[k] for k in self.keys)


def _load_checkpoint(spec: ModelSpec) -> LoadedModel:
    path = Path(spec.checkpoint)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist or is not a file; check the {{checkpoint}} path.")
    if path.suffix == ".pt2":
        return _load_exported_program(path, spec)

    if not spec.trust_checkpoint:
        return _load_untrusted_state_dict(path, spec)
    obj = _torch_load(path, spec.trust_checkpoint)
    if isinstance(obj, torch.jit.ScriptModule):
        return LoadedModel(obj, "torchscript", spec.input_shape, f"TorchScript module from {path.name}")
    if isinstance(obj, nn.Module):
        return LoadedModel(obj, "pickled_module", spec.input_shape, f"{type(obj).__name__} unpickled from {path.name}")

    state = _unwrap_state_dict(obj, path)
    if isinstance(state, nn.Module):
        return LoadedModel(state, "pickled_module", spec.input_shape, f"{type(state).__name__} unpickled from {path.name}")
    return _state_dict_model(state, path, spec)


def _load_untrusted_state_dict(path: Path, spec: ModelSpec) -> LoadedModel:
    """The bytes parsed in the confined child (``sandbox``); only its tensors reach this process."""
    sandboxed = load_state_isolated(path, parse_untrusted)
    loaded = _state_dict_model(sandboxed.state, path, spec)
    loaded.description += f", {sandboxed.describe()}"
    return loaded


def parse_untrusted(stream: BinaryIO, path: Path) -> dict[str, torch.Tensor]:
    """What the sandboxed child runs: ``torch.load(weights_only=True)`` and the state dict unwrapped."""
    state = _unwrap_state_dict(_torch_load(path, trust=False, stream=stream), path)
    assert isinstance(state, dict)  # weights_only never yields a module
    return state


def check_untrusted_program(stream: BinaryIO, path: Path) -> dict[str, torch.Tensor]:
    """What the sandboxed child runs for an untrusted ``.pt2``: the archive parsed (its sample inputs left
    out) and every graph op checked against ``pt2_ops``; nothing comes back but the verdict."""
    refuse_unlisted_ops(_export_load(without_sample_inputs(stream), path), path)
    return {}


def _state_dict_model(state: dict[str, torch.Tensor], path: Path, spec: ModelSpec) -> LoadedModel:
    if not spec.model:
        raise CheckpointError(
            f"{path} holds a state dict (weights only, {len(state)} tensors) and no architecture; pass "
            "{model} package.module:factory or {model} path/to/file.py:factory that builds the network "
            f"(or a built-in name: {', '.join(BUILTIN_MODELS)})."
        )
    module = build_architecture(spec.model, spec.model_kwargs)
    state, stripped = fit_prefixes(state, set(module.state_dict()))
    load_state_dict_checked(module, state, path)
    how = f", key prefix {' + '.join(repr(p) for p in stripped)} stripped to fit" if stripped else ""
    if stripped:
        log.info("%s: stripped the key prefix %s so the keys fit %s", path.name, " + ".join(stripped), type(module).__name__)
    return LoadedModel(
        module, "state_dict", spec.input_shape, f"{type(module).__name__} ({spec.model}) + {path.name}{how}", prefixes_stripped=stripped
    )


def _torch_load(path: Path, trust: bool, stream: BinaryIO | None = None) -> Any:
    """``torch.load`` of ``stream`` (read from ``path`` when None); ``path`` names the file in messages."""
    try:
        return torch.load(stream or path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # weights_only refuses a pickled class with "Unsupported global: GLOBAL pkg.Class"; any other
        # UnpicklingError means the bytes are not a pickle at all (a damaged or foreign file).
        refused = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        if refused is None:
            detail = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", str(err))
            reason = f"UnpicklingError: {detail.group(1)}" if detail else _reason(err)
            raise CheckpointError(_unreadable(path, reason)) from None
        if not trust:
            raise CheckpointError(
                f"{path} contains pickled Python objects (for example a whole nn.Module), and unpickling them runs "
                "code from the file, so it was loaded with weights_only=True and refused. If you trust where the "
                "file came from, pass {trust_checkpoint}; better, save only the weights with "
                "torch.save(model.state_dict(), path) and pass {model} to build the architecture. "
                f"(torch refused the global {refused.group(1)})"
            ) from None
    except Exception as err:  # a damaged file makes torch.load raise KeyError, EOFError, RuntimeError, ...
        raise CheckpointError(_unreadable(path, _reason(err))) from None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # unpickling a trusted file can fail in any way its classes do
        raise CheckpointError(
            f"{path} could not be unpickled ({_reason(err)}); the classes it refers to must be importable here "
            "(install the package that defines them or add it to PYTHONPATH)."
        ) from None


def _unreadable(path: Path, reason: str) -> str:
    return (
        f"{path} is not a readable PyTorch checkpoint ({reason}); "
        "check that the file is complete and was written by torch.save."
    )


def _reason(err: BaseException) -> str:
    """``Type: first line`` of an exception, also for one with an empty message (EOFError on an empty file)."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0][:200]}" if lines else type(err).__name__


def _unwrap_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor] | nn.Module:
    for _ in range(3):
        if isinstance(obj, nn.Module):
            return obj
        if not isinstance(obj, dict):
            break
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
        inner = next((obj[k] for k in _WRAPPER_KEYS if k in obj and obj[k] is not None), None)
        if inner is None:
            break
        obj = inner
    kind = type(obj).__name__
    keys = ", ".join(list(obj)[:8]) if isinstance(obj, dict) else ""
    raise CheckpointError(
        f"{path} holds a {kind} that is not a state dict{f' (keys: {keys})' if keys else ''}; expected tensors by "
        f"name, possibly under one of {', '.join(_WRAPPER_KEYS)}. Save it with torch.save(model.state_dict(), path)."
    )


def fit_prefixes(state: dict[str, torch.Tensor], wanted: set[str]) -> tuple[dict[str, torch.Tensor], tuple[str, ...]]:
    """The state dict as saved when its keys fit ``wanted``; else with the wrapper prefixes (``module.`` of
    DataParallel, ``_orig_mod.`` of torch.compile, ``model.`` of a wrapper) stripped, in the order found, as far
    as that makes them fit. A module whose own keys start with ``model.`` keeps them. Returns the prefixes used."""
    if set(state) == wanted:
        return state, ()
    stripped: list[str] = []
    current = state
    while True:
        prefix = next((p for p in _PREFIXES if current and all(k.startswith(p) for k in current)), None)
        if prefix is None:
            break
        current = {k[len(prefix) :]: v for k, v in current.items()}
        stripped.append(prefix)
        if set(current) == wanted:
            return current, tuple(stripped)
    # Neither fits exactly: keep the version that shares more keys, so the mismatch message lists the real gap.
    if len(set(current) & wanted) > len(set(state) & wanted):
        return current, tuple(stripped)
    return state, ()


def _load_exported_program(path: Path, spec: ModelSpec) -> LoadedModel:
    """A trusted archive loads as it is. An untrusted one is first parsed and its ops checked in the sandbox;
    then this process parses it again (it has no pickled payloads, ``pt2_archive``; its sample inputs are left
    out) and checks the ops itself before anything in the graph runs."""
    how = ""
    if spec.trust_checkpoint:
        program = _export_load(str(path), path)
    else:
        sandboxed = check_program_isolated(path, check_untrusted_program)
        with path.open("rb") as stream:
            program = _export_load(without_sample_inputs(stream), path)
        refuse_unlisted_ops(program, path)
        how = f", its ops checked against the allowlist, {sandboxed.describe()} first"
    shape = spec.input_shape
    placeholders = [n for n in program.graph.nodes if n.op == "placeholder" and n.name in program.graph_signature.user_inputs]
    if placeholders and "val" in placeholders[0].meta:
        exported_shape = tuple(int(d) for d in placeholders[0].meta["val"].shape)
        if exported_shape != tuple(shape):
            log.info("using the input shape recorded in %s: %s", path.name, exported_shape)
            shape = exported_shape
    module = program.module()
    for sub in module.modules():  # its .train()/.eval() raise; the ops it runs were fixed at export time
        sub.training = False
    return LoadedModel(module, "exported_program", shape, f"torch.export program {path.name}{how}")


def _export_load(source: str | BinaryIO, path: Path) -> torch.export.ExportedProgram:
    try:
        return torch.export.load(source)
    except Exception as err:  # torch.export.load raises many types for a bad archive
        raise CheckpointError(
            f"{path} is not a loadable torch.export program ({_reason(err)}); "
            "write it with torch.export.save(torch.export.export(model, args), path)."
        ) from None


def resolve_factory(reference: str) -> Callable[..., nn.Module]:
    """``pkg.mod:factory`` or ``path/to/file.py:factory`` -> the callable."""
    if ":" not in reference:
        raise CheckpointError(
            f"{{model}} {reference!r} is neither a built-in name ({', '.join(BUILTIN_MODELS)}) nor "
            "package.module:factory / path/to/file.py:factory."
        )
    module_ref, _, attr = reference.rpartition(":")
    if module_ref.endswith(".py") or "/" in module_ref:
        file = Path(module_ref)
        if not file.is_file():
            raise CheckpointError(f"{{model}} {reference}: the file {file} does not exist.")
        name = f"quantweb_user_model_{abs(hash(str(file.resolve())))}"
        spec = importlib.util.spec_from_file_location(name, file)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as err:
            raise CheckpointError(
                f"{{model}} {reference}: importing {file} failed ({_reason(err)})."
            ) from None
    else:
        try:
            module = importlib.import_module(module_ref)
        except ImportError as err:
            raise CheckpointError(
                f"{{model}} {reference}: cannot import module {module_ref!r} ({err}); install the package that "
                "provides it, add its folder to PYTHONPATH, or pass path/to/file.py:factory."
            ) from None
    factory = getattr(module, attr, None)
    if factory is None or not callable(factory):
        available = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))[:12]
        raise CheckpointError(
            f"{{model}} {reference}: module {module_ref!r} has no callable {attr!r}; callables there: "
            f"{', '.join(available) or 'none'}."
        )
    return factory


def build_architecture(reference: str, kwargs: dict[str, Any]) -> nn.Module:
    builtin = get_builtin(reference)
    if builtin is not None:
        return builtin.build(pretrained=False, **kwargs)
    factory = resolve_factory(reference)
    try:
        module = factory(**kwargs)
    except TypeError as err:
        params = ", ".join(inspect.signature(factory).parameters) if callable(factory) else "?"
        raise CheckpointError(
            f"{{model}} {reference}: calling it with {kwargs or 'no arguments'} failed ({err}); it takes ({params}); "
            "pass keyword arguments with {model_kwargs} name=value."
        ) from None
    if not isinstance(module, nn.Module):
        raise CheckpointError(f"{{model}} {reference} returned a {type(module).__name__}, not a torch.nn.Module.")
    return module


def load_state_dict_checked(module: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """``load_state_dict(strict=True)`` with one message listing missing, unexpected and mis-shaped keys."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [
        f"{k} (checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)})"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"missing keys {_few(missing)}")
        if unexpected:
            parts.append(f"unexpected keys {_few(unexpected)}")
        if mismatched:
            parts.append(f"shape mismatches {_few(mismatched)}")
        raise CheckpointError(
            f"{path} does not fit the architecture {type(module).__name__}: {'; '.join(parts)}. Check that {{model}} "
            "builds the same network the checkpoint was trained with (and {model_kwargs}, e.g. num_classes)."
        )
    module.load_state_dict(state, strict=True)


def _few(items: list[str], n: int = 5) -> str:
    more = f" and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def check_input_shape(module: nn.Module, shape: tuple[int, ...], source: str) -> Any:
    """The model's output on zeros of ``shape``; a ``CheckpointError`` saying what to pass if it fails."""
    try:
        with torch.no_grad():
            return module(torch.zeros(shape))
    except Exception as err:
        first = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"{source}: the model failed on an input of shape {tuple(shape)} ({first}); pass the shape it was "
            "trained with, e.g. {input_shape} 1,1,28,28 for a grayscale 28x28 model or {input_shape} 299."
        ) from None
