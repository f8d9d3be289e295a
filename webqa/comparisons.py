"""Comparisons files: one `Comparison` per JSON line, shared by the comparison UI and reward training.

The file format (plain or gzip, crash-safe appends) is `webqa.records`'.

    append_comparison("comparisons.jsonl", comparison)
    comparisons = read_comparisons("comparisons.jsonl")
"""

from __future__ import annotations

from pathlib import Path

from webqa.records import append_record, read_records
from webqa.types import Comparison


def append_comparison(path: str | Path, comparison: Comparison) -> None:
    """Append one comparison as a JSON line (a gzip member for `.gz`), flushed and fsynced."""
    append_record(path, comparison.to_dict())


def read_comparisons(path: str | Path) -> list[Comparison]:
    """Every comparison in the file; a cut-off last line (a killed writer) is skipped with a warning."""
    return read_records(path, Comparison.from_dict, "comparison")
