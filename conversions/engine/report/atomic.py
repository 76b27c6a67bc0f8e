"""Atomic, never-overwriting file output: a run that fails or is killed leaves no half-written file."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from conversions.engine.errors import OutputExistsError


def check_writable(path: Path, force: bool) -> None:
    """Fails early (before minutes of conversion) when ``path`` exists and ``force`` is off."""
    if path.exists() and not force:
        raise OutputExistsError(
            f"{path} already exists; pass {{force}} to replace it, or choose another {{output}}."
        )
    path.parent.mkdir(parents=True, exist_ok=True)


def write_bytes_atomic(path: Path, data: bytes, force: bool = False) -> None:
    """Writes ``data`` to a temp file in the same folder, fsyncs, then renames it into place.

    Without ``force`` the final step uses a hard link, which fails if ``path`` appeared meanwhile, so a
    concurrent writer can never be overwritten either.
    """
    path = Path(path)
    check_writable(path, force)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        _publish(Path(tmp), path, force)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def copy_file_atomic(src: Path, dst: Path, force: bool = False) -> None:
    dst = Path(dst)
    check_writable(dst, force)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".partial", dir=dst.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        _publish(Path(tmp), dst, force)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def copy_tree_atomic(src: Path, dst: Path, force: bool = False) -> None:
    """Copies a directory (a SavedModel) beside ``dst`` then renames it into place."""
    dst = Path(dst)
    if dst.exists() and not force:
        raise OutputExistsError(f"{dst} already exists; pass {{force}} to replace it, or choose another {{output}}.")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".partial", dir=dst.parent))
    try:
        shutil.copytree(src, tmp, dirs_exist_ok=True)
        if dst.exists():
            shutil.rmtree(dst)
        os.rename(tmp, dst)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def _umask_mode() -> int:
    """``0o666`` less the process umask (0o600 under the portal's 0o077), read without changing it: setting
    it to 0 for an instant, the usual way to read it, would let another thread create a world-writable file."""
    try:
        status = Path("/proc/self/status").read_text()
        mask = int(next(line.split()[1] for line in status.splitlines() if line.startswith("Umask:")), 8)
    except (OSError, StopIteration):  # not Linux, or a kernel older than 4.7
        mask = os.umask(0)
        os.umask(mask)
    return 0o666 & ~mask


def _publish(tmp: Path, path: Path, force: bool) -> None:
    # mkstemp creates 0600 files; published artifacts get the permissions an ordinary write would give.
    os.chmod(tmp, _umask_mode())
    if force:
        os.replace(tmp, path)
    else:
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise OutputExistsError(
                f"{path} appeared while this run was writing it; nothing was overwritten. "
                "Pass {force} to replace it, or choose another {output}."
            ) from None
