"""The code's layout holds: no import cycle, no oversized module without a reason, every engine module mapped."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_the_layout_check_passes():
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "check_layout.py")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 import cycle(s)" in out.stdout


def test_the_engine_imports_no_django():
    engine = REPO / "conversions" / "engine"
    offenders = [str(p.relative_to(REPO)) for p in engine.rglob("*.py")
                 if "import django" in p.read_text() or "from django" in p.read_text()]  # fmt: skip
    assert offenders == []
