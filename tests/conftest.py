"""Shared fixtures: the shipped models (loaded once) and tiny nets every test can build in milliseconds."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from explorer.models import load_model


@pytest.fixture(scope="session")
def ring():
    return load_model("toy2d/ring")


@pytest.fixture(scope="session")
def moons():
    return load_model("toy2d/moons")


def tiny_relu_net(d: int = 3, hidden: int = 16, depth: int = 2, out: int = 2, seed: int = 0,
                  dtype=torch.float64) -> nn.Sequential:
    """A small ReLU MLP d → out with ``nn.ReLU`` modules, deterministic from ``seed``."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Linear(d, hidden)]
    for _ in range(depth - 1):
        layers += [nn.ReLU(), nn.Linear(hidden, hidden)]
    layers += [nn.ReLU(), nn.Linear(hidden, out)]
    return nn.Sequential(*layers).to(dtype)


def settle_jobs(timeout: float = 900.0) -> bool:
    """Wait until the compute worker has no queued or running job; True when any was waited for."""
    from explorer.jobs import default_registry

    waited = False
    for job in default_registry().jobs(active_only=True):
        job.wait(timeout)
        waited = True
    return waited


@pytest.fixture(scope="module")
def app_test_profile(tmp_path_factory):
    """Small sizes (EXPLORER_PROFILE=test) and a private cache folder for one module's app tests; the
    environment is restored afterwards. Modules opt in with ``pytestmark = pytest.mark.usefixtures(...)``.

    AppTest does not fire ``st.fragment(run_every=...)``, which is how a page polls the compute worker; so here
    every script run is followed, while the worker has jobs, by waiting for them and running the script again,
    as the page's poll would (the tests then see the drawn results)."""
    from streamlit.testing.v1 import AppTest

    old = {k: os.environ.get(k) for k in ("EXPLORER_PROFILE", "EXPLORER_CACHE_DIR", "EXPLORER_HOME",
                                          "STREAMLIT_CLIENT_SHOW_ERROR_DETAILS")}
    os.environ["STREAMLIT_CLIENT_SHOW_ERROR_DETAILS"] = "full"  # tests read the errors (the app shows their type)
    os.environ["EXPLORER_PROFILE"] = "test"
    os.environ["EXPLORER_CACHE_DIR"] = str(tmp_path_factory.mktemp("explorer-cache"))
    os.environ["EXPLORER_HOME"] = str(tmp_path_factory.mktemp("explorer-home"))
    from streamlit import config as st_config

    st_config.set_option("client.showErrorDetails", "full")  # the tests read the errors (the app shows their type)
    original = AppTest._run

    def run_settled(self, widget_state=None, timeout=None):
        out = original(self, widget_state, timeout)
        for _ in range(20):
            if not settle_jobs():
                break
            out = original(self, self._tree.get_widget_states(), timeout)
        return out

    AppTest._run = run_settled
    from explorer.jobs import default_registry

    default_registry().clear()  # finished jobs of another module's cache folder are not this module's results
    yield
    AppTest._run = original
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def isolated_cache(tmp_path_factory, monkeypatch):
    """A private, empty disk cache (and explorer home) for one test, outside its tmp_path."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(cache))
    monkeypatch.setenv("EXPLORER_HOME", str(tmp_path_factory.mktemp("home")))
    return cache
