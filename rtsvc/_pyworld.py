"""Import pyworld without setuptools' ``pkg_resources``.

pyworld <= 0.3.5 (the newest release on PyPI) runs ``import pkg_resources`` only to read its own
version, and setuptools >= 81 no longer ships ``pkg_resources``. Rather than pinning an old
setuptools in the user's environment, we lend pyworld a one-function stand-in for the duration of
its import and remove it again, so no other package ever sees it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
import types


def import_pyworld():
    """Return the ``pyworld`` module (WORLD vocoder bindings)."""
    if "pyworld" in sys.modules:
        return sys.modules["pyworld"]
    try:
        return importlib.import_module("pyworld")
    except ModuleNotFoundError as exc:
        if exc.name != "pkg_resources":
            raise
    sys.modules.pop("pyworld", None)
    stub = types.ModuleType("pkg_resources")

    def get_distribution(name: str):
        return types.SimpleNamespace(version=importlib.metadata.version(name))

    stub.get_distribution = get_distribution  # type: ignore[attr-defined]
    sys.modules["pkg_resources"] = stub
    try:
        return importlib.import_module("pyworld")
    finally:
        if sys.modules.get("pkg_resources") is stub:
            del sys.modules["pkg_resources"]
