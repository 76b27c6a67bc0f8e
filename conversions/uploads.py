"""Uploaded files: safe archive extraction, dataset folders and thumbnails.

An archive is extracted member by member into a fresh folder: no absolute paths, no ``..``, no links or
devices, no duplicate or over-long names, at most ``QUANTWEB_ARCHIVE_MAX_FILES`` files and as many bytes as
the smallest of ``QUANTWEB_ARCHIVE_MAX_BYTES``, ``QUANTWEB_ARCHIVE_MAX_RATIO`` times the archive, what is left
of the user's quota and the free disk less a reserve (counted as they are written, not trusted from the
headers). Any violation, and any damage (bad CRC, truncated stream), removes the folder and raises
``UnsafeArchive`` with what to fix.
"""

from __future__ import annotations

import errno
import re
import shutil
import stat
import struct
import tarfile
import tempfile
import zipfile
import zlib
import lzma
from pathlib import Path, PurePosixPath
from typing import IO, Callable, Iterator

from django.conf import settings
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")


MAX_NAME_BYTES = 255
"""The longest file or folder name most filesystems take."""
MAX_PATH_CHARS = 900
"""A member path longer than this would not fit the records that name dataset files."""


class UnsafeArchive(ValueError):
    """The archive is malformed or would write outside its folder, or past the limits."""


def extract_archive(archive: IO[bytes], name: str, target: Path, *, size: int | None = None,
                    quota_left: int | None = None, progress: Callable[[float], None] | None = None) -> Path:  # fmt: skip
    """Extracts ``archive`` (a .zip, .tar.gz or .tar named ``name``, ``size`` bytes) into the new folder
    ``target``, writing at most ``quota_left`` bytes; returns ``target``. ``progress`` is called after each
    chunk written with the fraction done (of the bytes a zip declares, of the archive read for a tar). Raises
    ``UnsafeArchive``, leaving nothing behind."""
    target.mkdir(parents=True, exist_ok=False)
    try:
        limits = _Limits(target, size, quota_left)
        limits.progress = progress
        lower = name.lower()
        if lower.endswith(".zip"):
            _extract_zip(archive, target, limits)
        elif lower.endswith(ARCHIVE_SUFFIXES):
            _extract_tar(archive, target, limits)
        else:
            raise UnsafeArchive(f"{name}: upload a .zip, .tar.gz or .tar archive")
        if limits.files == 0:
            raise UnsafeArchive(f"{name} contains no files")
    except UnsafeArchive:
        shutil.rmtree(target, ignore_errors=True)
        raise
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, struct.error,
            NotImplementedError, RuntimeError, ValueError) as err:  # fmt: skip
        # zipfile raises NotImplementedError / RuntimeError for what it cannot read (methods, encryption)
        # that _check_zip_member did not name, struct.error or ValueError (a name that is not UTF-8) for a
        # mangled header
        shutil.rmtree(target, ignore_errors=True)
        raise UnsafeArchive(f"the archive is damaged or truncated ({_reason(err)}); upload it again") from None
    except OSError as err:
        shutil.rmtree(target, ignore_errors=True)
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise UnsafeArchive("the server's disk filled up while extracting; ask staff to free space") from None
        raise UnsafeArchive(f"the archive could not be extracted ({_reason(err)})") from None
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return target


def check_room(target: Path, size: int | None, quota_left: int | None) -> None:
    """Raises ``UnsafeArchive`` when nothing could be extracted into ``target`` (quota used up, disk full):
    the up-front check a queued upload gets in the request."""
    _Limits(target, size, quota_left)


def _reason(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:160]}" if text else type(err).__name__


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):,.0f} MB"


class _Limits:
    """What one extraction may write: files, and bytes by the tightest of four limits (each worded)."""

    def __init__(self, target: Path, size: int | None, quota_left: int | None) -> None:
        self.files = 0
        self.bytes = 0
        self.progress: Callable[[float], None] | None = None
        self.done: Callable[[], float] = lambda: 0.0
        self.max_files = settings.QUANTWEB_ARCHIVE_MAX_FILES
        self.size = size
        free = shutil.disk_usage(target).free - settings.QUANTWEB_MIN_FREE_DISK
        caps = [(settings.QUANTWEB_ARCHIVE_MAX_BYTES, f"the limit of {_mb(settings.QUANTWEB_ARCHIVE_MAX_BYTES)}")]
        if size:
            ratio = settings.QUANTWEB_ARCHIVE_MAX_RATIO
            caps.append((size * ratio, f"{ratio} times the archive's size (a zip bomb?)"))
        if quota_left is not None:
            caps.append((max(0, quota_left), f"what is left of your upload quota ({_mb(max(0, quota_left))})"))
        caps.append((max(0, free), "the server's free disk space (ask staff to free space)"))
        self.max_bytes, self.why = min(caps, key=lambda c: c[0])
        if self.max_bytes <= 0:
            raise UnsafeArchive(f"nothing can be extracted: it would exceed {self.why}")

    def add_file(self) -> None:
        self.files += 1
        if self.files > self.max_files:
            raise UnsafeArchive(f"the archive has more than {self.max_files} files")

    def declare(self, total: int) -> None:
        """Refuses up front an archive whose own headers declare more than may be written."""
        if total > self.max_bytes:
            raise UnsafeArchive(f"the archive declares {_mb(total)} of files, more than {self.why}")

    def add_bytes(self, n: int) -> None:
        self.bytes += n
        if self.bytes > self.max_bytes:
            raise UnsafeArchive(f"the archive extracts to more than {self.why}")
        if self.progress is not None:
            self.progress(min(1.0, self.done()))


def _safe_member_path(target: Path, member_name: str) -> Path | None:
    """The destination of a member, or None for entries to skip (folders, macOS metadata)."""
    pure = PurePosixPath(member_name.replace("\\", "/"))
    if pure.is_absolute() or member_name.startswith(("/", "\\")) or (pure.parts and _DRIVE.match(pure.parts[0])):
        raise UnsafeArchive(f"{member_name[:80]!r}: absolute paths are not allowed in an archive")
    if len(member_name) > MAX_PATH_CHARS or any(len(p.encode()) > MAX_NAME_BYTES for p in pure.parts):
        raise UnsafeArchive(
            f"{member_name[:60]!r}…: a name in the archive is too long (at most {MAX_NAME_BYTES} bytes a name, "
            f"{MAX_PATH_CHARS} characters a path); rename it"
        )
    if ".." in pure.parts:
        raise UnsafeArchive(f"{member_name!r}: '..' would write outside the dataset folder")
    parts = [p for p in pure.parts if p not in ("", ".")]
    if not parts or parts[0] == "__MACOSX" or parts[-1].startswith("._"):
        return None
    dest = target.joinpath(*parts)
    if not dest.resolve().is_relative_to(target.resolve()):
        raise UnsafeArchive(f"{member_name!r} resolves outside the dataset folder")
    return dest


_DRIVE = re.compile(r"^[A-Za-z]:$")
"""A Windows drive (``C:``) as the first part; ``cls:1`` is a plain folder name."""


def _copy_limited(src: IO[bytes], dest: Path, limits: _Limits) -> None:
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        out = open(dest, "xb")
    except (FileExistsError, NotADirectoryError):
        raise UnsafeArchive(f"{dest.name!r} appears twice in the archive (or as a file and a folder)") from None
    with out:
        while chunk := src.read(1 << 20):
            limits.add_bytes(len(chunk))
            out.write(chunk)


def _extract_zip(archive: IO[bytes], target: Path, limits: _Limits) -> None:
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, ValueError, OverflowError, struct.error) as err:  # a mangled central directory
        raise UnsafeArchive(f"not a valid zip file ({err})") from None
    with zf:
        declared = sum(info.file_size for info in zf.infolist())
        limits.declare(declared)
        limits.done = lambda: limits.bytes / max(1, declared)
        for info in zf.infolist():
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise UnsafeArchive(f"{info.filename!r} is a symbolic link; links are not allowed")
            dest = _safe_member_path(target, info.filename)
            if dest is None or info.is_dir():
                continue
            _check_zip_member(info)
            limits.add_file()
            with zf.open(info) as src:
                _copy_limited(src, dest, limits)


ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate", zipfile.ZIP_BZIP2: "bzip2",
               zipfile.ZIP_LZMA: "lzma"}  # fmt: skip
"""The compression methods Python's zipfile reads; others (Deflate64 = 9, zstd, PPMd) it cannot."""
ZIP_METHOD_NAMES = {9: "Deflate64", 93: "Zstandard", 98: "PPMd", 99: "AES encryption"}


def _check_zip_member(info: zipfile.ZipInfo) -> None:
    """Refuses, by name, a member that is encrypted or compressed with a method that cannot be read."""
    if info.flag_bits & 0x1 or info.compress_type == 99:
        raise UnsafeArchive(f"{info.filename!r} is encrypted; upload an archive made without a password")
    if info.compress_type not in ZIP_METHODS:
        method = ZIP_METHOD_NAMES.get(info.compress_type, f"method {info.compress_type}")
        raise UnsafeArchive(
            f"{info.filename!r} is compressed with {method}, which the server cannot read; make the zip with "
            "standard deflate compression (zip -r, Python's zipfile, or 7-Zip with -mm=Deflate), or upload a .tar.gz"
        )


def _extract_tar(archive: IO[bytes], target: Path, limits: _Limits) -> None:
    try:
        tf = tarfile.open(fileobj=archive, mode="r:*")
    except tarfile.TarError as err:
        raise UnsafeArchive(f"not a valid tar archive ({err})") from None
    size = limits.size
    limits.done = lambda: archive.tell() / size if size else 0.0
    with tf:
        for member in tf:
            if member.issym() or member.islnk():
                raise UnsafeArchive(f"{member.name!r} is a link; links are not allowed")
            if not (member.isfile() or member.isdir()):
                raise UnsafeArchive(f"{member.name!r} is a device or special file")
            dest = _safe_member_path(target, member.name)
            if dest is None or member.isdir():
                continue
            limits.add_file()
            src = tf.extractfile(member)
            if src is None:
                continue
            with src:
                _copy_limited(src, dest, limits)


def dataset_root(folder: Path) -> Path:
    """An archive that holds one top-level folder (``photos/...``) is that folder."""
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return folder


def allowed_server_path(text: str) -> Path:
    """Resolves a server-side dataset path; raises ValueError unless it is inside an allow-listed root."""
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = Path(settings.BASE_DIR) / path
    path = path.resolve()
    roots = [Path(r).resolve() for r in settings.QUANTWEB_DATASET_ROOTS]
    if not any(path == root or path.is_relative_to(root) for root in roots):
        allowed = ", ".join(str(r) for r in roots) or "(none configured)"
        raise ValueError(f"{path} is not inside a folder allowed in QUANTWEB_DATASET_ROOTS: {allowed}")
    if not path.is_dir():
        raise ValueError(f"{path} is not a folder on the server")
    return path


def iter_images(folder: Path, limit: int = 100_000) -> Iterator[Path]:
    count = 0
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file() and not path.name.startswith("."):
            yield path
            count += 1
            if count >= limit:
                return


def pick_thumbnail_sources(folder: Path, count: int) -> list[Path]:
    """A few images spread over the sub-folders (classes), in a stable order."""
    by_parent: dict[Path, list[Path]] = {}
    for path in iter_images(folder, limit=5000):
        by_parent.setdefault(path.parent, []).append(path)
    picked: list[Path] = []
    per_group = max(1, -(-count // max(1, len(by_parent))))
    queues = [iter(_spread(v, per_group)) for _, v in sorted(by_parent.items())]
    while queues and len(picked) < count:
        for q in list(queues):
            item = next(q, None)
            if item is None:
                queues.remove(q)
            elif len(picked) < count:
                picked.append(item)
    return picked


def _spread(items: list[Path], n: int) -> list[Path]:
    """``n`` items evenly spaced over ``items`` (a flat folder shows more than its first few names)."""
    if len(items) <= n:
        return items
    return [items[i * len(items) // n] for i in range(n)]


def make_thumbnails(
    folder: Path, out_dir: Path, count: int, size: int = 160
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Writes up to ``count`` JPEG thumbnails into ``out_dir``, each image opened the engine's way
    (``open_image``: decompression bombs and garbage refused before decoding); returns the thumbnails
    ``[{"file", "source"}]`` and the images skipped ``[{"source", "reason"}]``."""
    from conversions.engine.data.preprocess import ImageReadError, open_image

    out_dir.mkdir(parents=True, exist_ok=True)
    thumbs, skipped = [], []
    for i, src in enumerate(pick_thumbnail_sources(folder, count)):
        source = str(src.relative_to(folder))
        try:
            with open_image(str(src)) as im:
                im.draft("RGB", (size, size))  # JPEGs decode at a reduced scale
                im = im.convert("RGB")
                im.thumbnail((size, size))
                dest = out_dir / f"{i}.jpg"
                im.save(dest, "JPEG", quality=85)
        except ImageReadError as err:
            skipped.append({"source": source, "reason": str(err)})
            continue
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as err:
            skipped.append({"source": source, "reason": f"not a readable image ({type(err).__name__})"})
            continue
        thumbs.append({"file": str(dest), "source": source})
    return thumbs, skipped


def save_upload(upload, dest: Path) -> Path:
    """Streams an UploadedFile to ``dest`` (a new file)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "xb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    return dest


def new_dataset_folder(name: str) -> Path:
    base = Path(settings.MEDIA_ROOT) / "datasets"
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=base))
