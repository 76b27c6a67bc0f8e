"""Published files get the modes an ordinary write would: owner-only under the portal's umask."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conversions.engine.report.atomic import copy_file_atomic, write_bytes_atomic


@pytest.mark.parametrize("umask, mode", [(0o077, "0o600"), (0o022, "0o644")])
def test_atomic_writes_publish_files_with_the_process_umask(tmp_path: Path, umask: int, mode: str) -> None:
    old = os.umask(umask)
    try:
        write_bytes_atomic(tmp_path / "model.tflite", b"TFL3")
        copy_file_atomic(tmp_path / "model.tflite", tmp_path / "copy.tflite")
    finally:
        os.umask(old)

    assert [oct(p.stat().st_mode & 0o777) for p in (tmp_path / "model.tflite", tmp_path / "copy.tflite")] == [mode, mode]
