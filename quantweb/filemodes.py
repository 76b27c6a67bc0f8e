"""Owner-only files for everything the portal stores: the database, ``var/`` and ``MEDIA_ROOT``.

The untrusted-checkpoint sandbox (``conversions.engine.model.sandbox``) runs as another user; it can read
nothing of the portal only if the portal's files are not world-readable. So every process of the portal
(web, workers, reaper, CLI: all import the settings) creates files with a umask of 0o077, and the settings
take group and other permissions off the folders and the SQLite file that already exist, which makes files
that an older version wrote 0644 unreachable too (a folder of 0700 cannot be entered by another user).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterable

PRIVATE_UMASK = 0o077


def keep_private(paths: Iterable[Path]) -> None:
    """Sets the process umask to 0o077 and makes each existing path owner-only (folders 0700, files 0600).

    A path owned by another user is left as it is: only its owner (or root) could change it, and the
    README's production section says who must own what."""
    os.umask(PRIVATE_UMASK)
    for path in paths:
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        if info.st_uid != os.getuid() or not stat.S_IMODE(info.st_mode) & 0o077:
            continue
        path.chmod(0o700 if stat.S_ISDIR(info.st_mode) else 0o600)
