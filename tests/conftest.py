"""Shared fixtures: run on the CPU always and on CUDA where it exists (`gpu` marker)."""

import os
import socket
import urllib.error
import urllib.request

import pytest
import torch

os.environ.setdefault("COURSE_QUIET", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

CUDA = torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs CUDA; none on this machine")
    for item in items:
        if "gpu" in item.keywords and not CUDA:
            item.add_marker(skip_gpu)


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request):
    """Each test that takes `device` runs on the CPU and, marked `gpu`, on CUDA."""
    return torch.device(request.param)


@pytest.fixture
def no_network(monkeypatch):
    """Every connection attempt fails at once, as on a machine without network."""

    def refuse(*args, **kwargs):
        raise OSError("network disabled by the test")

    def refuse_url(*args, **kwargs):
        raise urllib.error.URLError("network disabled by the test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse_url)
    monkeypatch.setattr(torch.hub, "urlopen", refuse_url)
