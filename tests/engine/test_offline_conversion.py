"""The engine never reaches the network: onnx2tf's sample-image download is replaced by the run's own data."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from conversions.engine.config import DataSpec, ExportConfig, ModelSpec
from conversions.engine.pipeline import run_export


class _NoNetwork(Exception):
    pass


@pytest.fixture
def no_network(monkeypatch):
    real_connect = socket.socket.connect
    attempts: list[object] = []

    def guarded(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and (host.startswith("127.") or host in ("localhost", "::1") or host.startswith("/")):
            return real_connect(self, address)
        attempts.append(address)
        raise _NoNetwork(f"network access attempted: {address}")

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: (_ for _ in ()).throw(_NoNetwork(f"DNS lookup {a[0]}")))
    return attempts


def test_int8_conversion_runs_with_the_network_blocked(tmp_path, no_network):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
    ckpt = tmp_path / "tiny.pt2"
    torch.export.save(torch.export.export(model.eval(), (torch.zeros(1, 3, 24, 24),)), ckpt)
    data = tmp_path / "photos"
    data.mkdir()
    rng = np.random.default_rng(1)
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (30, 30, 3), dtype=np.uint8)).save(data / f"{i}.png")

    report = run_export(
        ExportConfig(
            model=ModelSpec(checkpoint=str(ckpt), input_shape=(1, 3, 24, 24)),
            data=DataSpec(dataset_dir=str(data), num_calib_samples=6, num_eval_samples=6, num_workers=0),
            variants=("int8",),
            output=str(tmp_path / "out" / "tiny_int8.tflite"),
        )
    )

    assert no_network == []
    assert (tmp_path / "out" / "tiny_int8.tflite").stat().st_size > 0
    assert report.variant("int8").fully_integer
    assert report.conversion_route["attempts"][-1]["ok"]
