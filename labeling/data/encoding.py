"""Whether a file is UTF-8 text: empty, binary, UTF-16/UTF-32 and bad UTF-8 files are refused
with the byte and line of the fault, before any parsing.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from labeling.errors import ImportFailed


def check_sample(path: Path, name: str, sample: bytes) -> str:
    """Refuse empty and binary files; return the decoded sample."""
    if not sample.replace(codecs.BOM_UTF8, b"").strip():
        raise ImportFailed(f"{name}: the file is empty; expected a header row and data rows")
    wide = _wide_encoding(sample)
    if wide is not None:
        raise ImportFailed(f"{name}: looks like {wide}, not UTF-8; save the file as UTF-8")
    if b"\x00" in sample:
        offset = sample.index(b"\x00")
        line = sample[:offset].count(b"\n") + 1
        raise ImportFailed(
            f"{name}: holds a NUL byte at byte {offset} (line {line}); expected a UTF-8 text "
            "file (is it binary?)"
        )
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    try:
        return decoder.decode(sample, final=False)
    except UnicodeDecodeError as exc:
        raise not_utf8(path, name) from exc


def _wide_encoding(sample: bytes) -> str | None:
    """The name of a UTF-16/UTF-32 encoding the sample is written in, or None.

    Known by its byte order mark, or, without one, by text whose every second (or fourth) byte
    is NUL: ASCII written as UTF-16 looks like that, binary files rarely do.
    """
    for mark, name in (
        (codecs.BOM_UTF32_LE, "UTF-32 (little-endian byte order mark)"),
        (codecs.BOM_UTF32_BE, "UTF-32 (big-endian byte order mark)"),
        (codecs.BOM_UTF16_LE, "UTF-16 (little-endian byte order mark)"),
        (codecs.BOM_UTF16_BE, "UTF-16 (big-endian byte order mark)"),
    ):
        if sample.startswith(mark):
            return name
    head = sample[:4096]
    if len(head) >= 8:
        even, odd = head[0::2], head[1::2]
        if odd.count(0) >= 0.9 * len(odd) and even.count(0) <= 0.1 * len(even):
            return "UTF-16 (little-endian, no byte order mark)"
        if even.count(0) >= 0.9 * len(even) and odd.count(0) <= 0.1 * len(odd):
            return "UTF-16 (big-endian, no byte order mark)"
    return None


def not_utf8(path: Path, name: str) -> ImportFailed:
    """The error for a file that is not UTF-8, pointing at its first bad byte."""
    offset, line = _locate_bad_utf8(path)
    return ImportFailed(
        f"{name}: not valid UTF-8 at byte {offset} (line {line}); save the file as UTF-8"
    )


def _locate_bad_utf8(path: Path) -> tuple[int, int]:
    """Byte offset and 1-based line of the first byte that is not valid UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    lines = 1
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            try:
                decoder.decode(block, final=False)
            except UnicodeDecodeError as exc:
                bad = max(exc.start - len(decoder.getstate()[0]), 0)
                return offset + bad, lines + block[:bad].count(b"\n")
            offset += len(block)
            lines += block.count(b"\n")
    return offset, lines
