"""Zips Python's zipfile cannot read, made with the standard library by setting header fields by hand:
an encrypted member, a Deflate64 (or other unknown) method, a member name that is not UTF-8."""

from __future__ import annotations

import io
import struct
import zipfile

LOCAL, CENTRAL = b"PK\x03\x04", b"PK\x01\x02"
# offsets of the general-purpose flags, the method and the name in each header
FLAGS = {LOCAL: 6, CENTRAL: 8}
METHOD = {LOCAL: 8, CENTRAL: 10}
NAME = {LOCAL: 30, CENTRAL: 46}


def image_zip() -> bytearray:
    """A valid deflated zip of two small files in class folders."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("cat/a.jpg", b"\xff\xd8" + b"x" * 1000)
        zf.writestr("dog/b.jpg", b"\xff\xd8" + b"y" * 1000)
    return bytearray(buf.getvalue())


def _patch(data: bytearray, offsets: dict[bytes, int], fmt: str, value: int) -> bytes:
    for signature, offset in offsets.items():
        start = 0
        while (start := data.find(signature, start)) >= 0:
            struct.pack_into(fmt, data, start + offset, value)
            start += 4
    return bytes(data)


def encrypted_zip() -> bytes:
    """Every member flagged encrypted (bit 0), as a zip made with a password is."""
    return _patch(image_zip(), FLAGS, "<H", 0x1)


def method_zip(method: int) -> bytes:
    """Every member's compression method set to ``method`` (9: Deflate64, as Windows' zip writes big files)."""
    return _patch(image_zip(), METHOD, "<H", method)


def non_utf8_name_zip() -> bytes:
    """The first member flagged UTF-8 (bit 11) with a name starting with byte 0xff: a broken central directory."""
    data = image_zip()
    for signature in (LOCAL, CENTRAL):
        start = data.find(signature)
        struct.pack_into("<H", data, start + FLAGS[signature], 0x800)
        data[start + NAME[signature]] = 0xFF
    return bytes(data)


def bad_central_signature_zip() -> bytes:
    """The central directory's first record's signature overwritten."""
    data = image_zip()
    start = data.find(CENTRAL)
    data[start : start + 4] = b"XXXX"
    return bytes(data)


BAD_ZIPS = {
    "encrypted": (encrypted_zip, "is encrypted; upload an archive made without a password"),
    "Deflate64": (lambda: method_zip(9), "is compressed with Deflate64, which the server cannot read"),
    "unknown method": (lambda: method_zip(77), "is compressed with method 77, which the server cannot read"),
    "name not UTF-8": (non_utf8_name_zip, "not a valid zip file"),
    "central directory": (bad_central_signature_zip, "not a valid zip file"),
}
"""Each bad zip and the words its refusal must contain."""
