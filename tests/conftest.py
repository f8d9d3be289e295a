"""Shared fixtures: the real embedded encyclopedia, indexed once per test session."""

import pytest


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Keep every cache the tests create (index, HTTP cache) out of the user's cache folder."""
    from webqa.pypi import downloads_dir

    patcher = pytest.MonkeyPatch()
    # Downloaded packages are immutable files: share them with the user's cache instead of fetching again.
    patcher.setenv("WEBQA_DOWNLOADS", str(downloads_dir()))
    patcher.setenv("WEBQA_CACHE", str(tmp_path_factory.mktemp("webqa-cache")))
    yield
    patcher.undo()


@pytest.fixture(scope="session")
def corpus(_private_cache):
    from webqa.env import LocalCorpus

    return LocalCorpus.default()


@pytest.fixture(scope="session")
def tiny_policy(corpus, tmp_path_factory):
    """(model, tokenizer): a tiny random model of the base's architecture, its tokenizer fitted to a few pages."""
    from tests.tiny import tiny_policy_folder
    from webqa.policy.model import load_model

    texts = [corpus.plain_text(t) for t in ["Danube", "Vienna", "Istanbul", "Albert Einstein"]]
    return load_model(str(tiny_policy_folder(tmp_path_factory.mktemp("tiny-policy"), texts)), device="cpu")
