"""Importing a reference package (torchfcpe, torchcrepe) with stand-in modules for imports it
makes but the tests never use (torchaudio above all, which would need a matching torch)."""

from __future__ import annotations

import importlib
import sys
import types


def stub(name: str, **attrs) -> types.ModuleType:
    """A module called ``name`` holding ``attrs``."""
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    return mod


def refuse(*_args, **_kwargs):
    raise RuntimeError("test stand-in called: the reference used a module it should not need here")


def import_with_stand_ins(name: str, stubs: dict[str, types.ModuleType], forget: tuple[str, ...] = ()):
    """Import ``name`` with ``stubs`` in ``sys.modules``; afterwards the stubs are taken out again
    (what was there before comes back), and so is every module newly imported whose top-level
    package is in ``forget`` (imported against a stand-in), so no other test sees them."""
    before = set(sys.modules)
    saved = {key: sys.modules.get(key) for key in stubs}
    sys.modules.update(stubs)
    try:
        return importlib.import_module(name)
    finally:
        for key, module in saved.items():
            if module is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = module
        for key in set(sys.modules) - before:
            if key.split(".")[0] in forget:
                del sys.modules[key]
