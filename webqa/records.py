"""JSON-lines files that survive a killed writer: demonstrations and comparisons are kept in them.

A path ending in `.gz` is gzip: each append writes one gzip member, which is still
one valid gzip file, so appends never rewrite what is there. Every append is
flushed and fsynced, so a killed writer loses at most the record it was writing;
readers skip such a cut-off last line with a warning, and the next append first
cuts it away.
"""

from __future__ import annotations

import gzip
import json
import os
import warnings
import zlib
from pathlib import Path
from typing import Any, Callable, TypeVar

T = TypeVar("T")

_repaired: set[Path] = set()  # gzip files whose tail this process has checked before appending


def append_record(path: str | Path, record: dict[str, Any]) -> None:
    """Append one record as a JSON line (a gzip member for `.gz`), flushed and fsynced.

    A record a killed writer cut off is cut away first: a plain file is checked before every append
    (its last byte says whether it ends on a whole line), a gzip file once per process."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    if path.suffix == ".gz":
        if path.resolve() not in _repaired:
            repair(path)
            _repaired.add(path.resolve())
        line = gzip.compress(line, mtime=0)
    elif not _ends_on_a_line(path):
        repair(path)
        if not _ends_on_a_line(path):  # a whole last record without its newline
            line = b"\n" + line
    with open(path, "ab") as out:
        out.write(line)
        out.flush()
        os.fsync(out.fileno())


def read_records(path: str | Path, parse: Callable[[dict], T], kind: str = "record") -> list[T]:
    """Every record in the file, each passed through `parse`; a cut-off last line is skipped with a warning.

    Any other line that `parse` rejects raises ValueError naming its line number and `kind`.
    """
    path = Path(path)
    text, _, cut = _whole_records(path)
    if cut:
        warnings.warn(f"{path}: the last line is cut off (a writer killed mid-write?); skipped it", stacklevel=3)
    records = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            records.append(parse(json.loads(line)))
        except (json.JSONDecodeError, TypeError, KeyError, AttributeError, ValueError) as exc:
            raise ValueError(f"{path}, line {number}: not a {kind} ({type(exc).__name__}: {exc})") from None
    return records


def _ends_on_a_line(path: Path) -> bool:
    """Whether the plain file is empty, missing, or ends with a newline."""
    if not path.exists() or path.stat().st_size == 0:
        return True
    with open(path, "rb") as file:
        file.seek(-1, os.SEEK_END)
        return file.read(1) == b"\n"


def repair(path: str | Path) -> int:
    """Cut a partly written last record off the end of the file; returns how many bytes went."""
    path = Path(path)
    if not path.exists():
        return 0
    _, keep, cut = _whole_records(path)
    if not cut:
        return 0
    size = path.stat().st_size
    with open(path, "r+b") as out:
        out.truncate(keep)
        out.flush()
        os.fsync(out.fileno())
    return size - keep


def _whole_records(path: Path) -> tuple[str, int, bool]:
    """The text of the file's whole records, their length in bytes, and whether a cut-off record follows.

    Plain: the lines up to the last newline (a last line without one counts if it is whole JSON).
    Gzip: the complete members; a member cut off mid-write ends the file.
    """
    data = path.read_bytes()
    if path.suffix != ".gz":
        keep = data.rfind(b"\n") + 1
        last = data[keep:]
        if last.strip():
            try:
                json.loads(last)
                keep = len(data)
            except ValueError:
                pass
        return data[:keep].decode("utf-8"), keep, keep < len(data) and bool(data[keep:].strip())
    parts, keep = [], 0
    while keep < len(data):
        member = zlib.decompressobj(wbits=31)  # one gzip member
        try:
            text = member.decompress(data[keep:])
        except zlib.error:
            break
        if not member.eof:
            break
        parts.append(text)
        keep = len(data) - len(member.unused_data)
    return b"".join(parts).decode("utf-8"), keep, keep < len(data)


def load_as_dataset(path: str | Path, cache_dir: str | None = None):
    """The file as a Hugging Face `datasets.Dataset` (needs the `datasets` package)."""
    from datasets import load_dataset

    return load_dataset("json", data_files=str(path), split="train", cache_dir=cache_dir)
