"""What each protocol op does to the engine: the only place the remote server calls the controller.

:class:`RemoteOps` runs on the server's single controller thread (never on the asyncio loop, never
on the audio thread), so requests reach the controller one at a time, in arrival order.
Ops that touch per-connection state (auth, subscribe, unsubscribe) live in the server.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from dataclasses import fields
from typing import Any, Callable, Protocol

from rtsvc.engine.params import LiveParams
from rtsvc.errors import ParameterError, RtsvcError
from rtsvc.remote.protocol import (BAD_VALUE, ENGINE_ERROR, NOT_FOUND, RemoteError, Request, jsonable,
                                   validate_name)
from rtsvc.remote.voices import BUILTIN_VOICE, VoiceLibrary

log = logging.getLogger(__name__)

#: Names of the live parameters (the keys ``set`` accepts).
PARAM_NAMES = tuple(f.name for f in fields(LiveParams))
#: Result key of a Future the server must await before replying (removed from the reply).
PENDING = "_pending"


class ControllerLike(Protocol):
    """The calls the remote server makes on :class:`rtsvc.engine.controller.Controller`."""

    @property
    def params(self) -> LiveParams: ...

    @property
    def running(self) -> bool: ...

    def update(self, **changes: Any) -> LiveParams: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def devices(self) -> Any: ...

    def status(self) -> Any: ...

    def load_voice(self, spec: Any, device: str = "cpu") -> Future: ...

    def subscribe(self, callback: Callable[[Any], None], rate_hz: float) -> Callable[[], None]: ...

    def save_preset(self, name: str) -> Any: ...

    def load_preset(self, name: str) -> LiveParams: ...

    def list_presets(self) -> list[str]: ...

    def delete_preset(self, name: str) -> None: ...


def _field_named(message: str, candidates: list[str]) -> str | None:
    """The parameter a ParameterError message is about (longest matching name wins)."""
    hits = [c for c in candidates if c in message]
    return max(hits, key=len) if hits else None


class RemoteOps:
    """Executes validated requests against ``controller``; voices come from ``voices`` only and
    load with ``voice_options`` (VoiceSpec fields: device, backend, threads, fp16, cuda_graphs;
    see rtsvc.cli_options.voice_options)."""

    def __init__(self, controller: ControllerLike, voices: VoiceLibrary, voice_options: dict | None = None) -> None:
        self.controller = controller
        self.voices = voices
        self.voice_options = dict(voice_options or {})
        self._handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "ping": lambda a: {"pong": True},
            "get": self._get,
            "set": self._set,
            "start": self._start,
            "stop": self._stop,
            "status": lambda a: {"status": self.status()},
            "devices": lambda a: {"devices": jsonable(self.controller.devices())},
            "voices": lambda a: {"voices": self.voices.names()},
            "load_voice": self._load_voice,
            "presets": lambda a: {"presets": self._preset_names()},
            "save_preset": self._save_preset,
            "load_preset": self._load_preset,
            "delete_preset": self._delete_preset,
        }

    def ops(self) -> tuple[str, ...]:
        return tuple(self._handlers)

    def run(self, request: Request) -> dict[str, Any]:
        """The result object of ``request``; raises :class:`RemoteError` for refusals and failures."""
        handler = self._handlers[request.op]
        try:
            return handler(request.args)
        except RemoteError:
            raise
        except ParameterError as exc:
            if "name" in request.args:  # a preset or voice name the engine refused
                raise RemoteError(BAD_VALUE, str(exc), "name") from None
            names = list(request.args.get("params", {})) if request.op == "set" else list(PARAM_NAMES)
            field = _field_named(str(exc), names)
            raise RemoteError(BAD_VALUE, str(exc), f"params.{field}" if field and request.op == "set" else field) from None
        except RtsvcError as exc:
            raise RemoteError(ENGINE_ERROR, str(exc)) from None

    # -- state ----------------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        return jsonable(self.controller.params.to_dict())

    def status(self) -> dict[str, Any]:
        status = jsonable(self.controller.status())
        return status if isinstance(status, dict) else {"status": status}

    def running(self) -> bool:
        return bool(self.controller.running)

    def change_event(self, op: str) -> dict[str, Any]:
        """The push other clients get after ``op`` changed the engine."""
        return {"type": "params", "op": op, "params": self.params(), "running": self.running()}

    def _get(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"params": self.params(), "running": self.running()}

    def _set(self, args: dict[str, Any]) -> dict[str, Any]:
        changes = args["params"]
        unknown = sorted(k for k in changes if k not in PARAM_NAMES)
        if unknown:
            raise RemoteError(BAD_VALUE, f"unknown parameter {unknown[0][:64]!r}; known: {', '.join(PARAM_NAMES)}.",
                              f"params.{unknown[0][:64]}")
        new = self.controller.update(**changes)
        return {"params": jsonable(new.to_dict())}

    def _start(self, args: dict[str, Any]) -> dict[str, Any]:
        self.controller.start()
        return {"running": self.running()}

    def _stop(self, args: dict[str, Any]) -> dict[str, Any]:
        self.controller.stop()
        return {"running": self.running()}

    # -- voices -----------------------------------------------------------------------------
    def _load_voice(self, args: dict[str, Any]) -> dict[str, Any]:
        """Starts the load; the server awaits ``result[PENDING]`` (a Future) before replying."""
        entry = self.voices.resolve(args["name"])
        spec: Any = BUILTIN_VOICE
        if entry != BUILTIN_VOICE:
            spec = {"model_path": str(entry.model_path), "config_path": str(entry.config_path), **self.voice_options}
        device = self.voice_options.get("device", "cpu")
        return {"voice": args["name"], PENDING: self.controller.load_voice(spec, device=device)}

    # -- presets ----------------------------------------------------------------------------
    def _preset_names(self) -> list[str]:
        return list(self.controller.list_presets())

    def _known_preset(self, name: str) -> str:
        validate_name("name", name)
        if name not in self._preset_names():
            raise RemoteError(NOT_FOUND, f"no preset named {name!r}; list them with the 'presets' op.", "name")
        return name

    def _save_preset(self, args: dict[str, Any]) -> dict[str, Any]:
        name = validate_name("name", args["name"])
        self.controller.save_preset(name)
        return {"name": name}

    def _load_preset(self, args: dict[str, Any]) -> dict[str, Any]:
        name = self._known_preset(args["name"])
        params = self.controller.load_preset(name)
        return {"name": name, "params": jsonable(params.to_dict())}

    def _delete_preset(self, args: dict[str, Any]) -> dict[str, Any]:
        name = self._known_preset(args["name"])
        self.controller.delete_preset(name)
        return {"name": name}
