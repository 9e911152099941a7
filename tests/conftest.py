"""Shared test helpers.

Fixtures produced by so-vits-svc and fairseq live in ``../shared/fixtures`` beside the checkout
(override with ``RTSVC_FIXTURES``). On CI (``CI`` or ``RTSVC_REQUIRE_FIXTURES`` set) a missing
fixture folder fails the run loudly instead of skipping.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _fixtures_root() -> Path:
    env = os.environ.get("RTSVC_FIXTURES")
    return Path(env) if env else ROOT.parent / "shared" / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """Path to the shared fixtures (contains ``sovits/`` and ``contentvec/``)."""
    root = _fixtures_root()
    if not (root / "sovits").is_dir():
        msg = f"shared fixtures not found at {root}; set RTSVC_FIXTURES to the fixtures folder"
        if os.environ.get("CI") or os.environ.get("RTSVC_REQUIRE_FIXTURES"):
            pytest.fail(msg)
        pytest.skip(msg)
    return root


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def cv_dir(fixtures_dir: Path) -> Path:
    """The ContentVec/fairseq fixtures (``fixtures_dir / "contentvec"``); fails on CI if missing."""
    path = fixtures_dir / "contentvec"
    if not path.is_dir():
        msg = f"ContentVec fixtures missing at {path}"
        if os.environ.get("CI") or os.environ.get("RTSVC_REQUIRE_FIXTURES"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(autouse=True, scope="session")
def _private_rtsvc_cache(tmp_path_factory):
    """ONNX graphs exported by tests go to a temporary folder, never the user's cache
    (rtsvc.onnx_cache); subprocesses (CLI tests) inherit it through the environment."""
    patch = pytest.MonkeyPatch()
    patch.setenv("RTSVC_CACHE_DIR", str(tmp_path_factory.mktemp("rtsvc-cache")))
    yield
    patch.undo()
