"""Everything the portal stores is owner-only, so the checkpoint sandbox's user (or anyone else) reads none of it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage


ROOT = Path(__file__).resolve().parents[2]


def _mode(path: Path) -> str:
    return oct(path.stat().st_mode & 0o777)


def test_a_portal_process_makes_an_older_world_readable_var_and_database_private_and_creates_private_files(
    tmp_path: Path,
) -> None:
    var = tmp_path / "var"
    media = var / "media"
    old = os.umask(0o022)
    try:  # as a quantweb without these modes left them
        media.mkdir(parents=True)
        database = var / "quantweb.sqlite3"
        sqlite3.connect(database).execute("create table t (x)").connection.close()
    finally:
        os.umask(old)
    assert (_mode(var), _mode(media), _mode(database)) == ("0o755", "0o755", "0o644")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_VERSION", "MEDIA_ROOT")}
    env.update(QUANTWEB_VAR_DIR=str(var), DATABASE_URL=f"sqlite:///{database}", DJANGO_SETTINGS_MODULE="quantweb.settings")

    # a process as manage.py starts one (runserver, rqworker, reap_runs): the settings, then it writes files
    script = "import django, pathlib, sys; django.setup(); pathlib.Path(sys.argv[1]).write_text('x')"
    subprocess.run([sys.executable, "-c", script, str(var / "new.txt")], cwd=ROOT, env=env, check=True, timeout=120)

    assert (_mode(var), _mode(media), _mode(database), _mode(var / "new.txt")) == ("0o700", "0o700", "0o600", "0o600")


def test_uploads_are_stored_owner_only(media: Path) -> None:
    name = default_storage.save("checkpoints/7/w.pth", ContentFile(b"weights"))

    stored = Path(default_storage.path(name))
    assert (_mode(stored), _mode(stored.parent), _mode(stored.parent.parent)) == ("0o600", "0o700", "0o700")

