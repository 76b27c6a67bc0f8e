"""Static files: hashed, compressed names once ``collectstatic`` has run; the plain names before it.

A developer who starts ``manage.py runserver`` with DEBUG off and no ``collectstatic`` would otherwise get a
500 on every page (no manifest entry for ``style.css``). Without a manifest the pages link the plain names,
which WhiteNoise serves from the finders (``WHITENOISE_USE_FINDERS``), and the log says once what to run.
"""

from __future__ import annotations

import logging

from django.core.files.storage import FileSystemStorage
from whitenoise.storage import CompressedManifestStaticFilesStorage

logger = logging.getLogger("quantweb.static")


class CollectedOrFoundStorage(CompressedManifestStaticFilesStorage):
    warned = False

    def url(self, name: str, force: bool = False) -> str:
        if self.hashed_files or force:  # collected: cacheable hashed names
            return super().url(name, force)
        if not CollectedOrFoundStorage.warned:
            CollectedOrFoundStorage.warned = True
            logger.warning("Static files are not collected: run '.venv/bin/python manage.py collectstatic "
                           "--noinput' (served uncompressed, under their plain names, until then).")  # fmt: skip
        return FileSystemStorage.url(self, name)
