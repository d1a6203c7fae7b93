"""An env seen through the sandbox wall: the agent holds proxies, the harness holds the env.

In a sandboxed episode (:mod:`optgym.sandbox`) the agent runs where no backend can be
reached, and the env, with the runner's budget meter attached, stays in the trusted
harness. The agent's ``env`` is a :class:`ProxyEnv`: every attribute read, method call and
property set is a request over :mod:`optgym.agent_channel`, served by :class:`EnvServer`
in the harness, so every unit of work the agent asks for is done, and counted, by the
harness's env. Values come back by value (observations, spaces, states, models); the env,
its forks and its meter come back as further proxies.

What the server refuses, with the reason: private names (``_*``), the meter's controls
(``attach_meter``; on the meter, anything but its readings), ``close``, ``validate`` (it
builds an env of another config, unmetered), the datasets, writing files
(``write_bitcode``), a reset, a replay or a ``benchmark`` set to another benchmark than
the episode's, and values that cannot be sent.
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import pickle
import socket
import types
from collections.abc import Callable
from typing import Any

import gymnasium as gym

from optgym.agent_channel import (
    JSON,
    MAX_DATA_BYTES,
    PICKLE,
    Ref,
    decode_data,
    read_frame,
    rebuild_error,
    send_data,
    send_frame,
)

#: Env names the agent may not reach through the proxy.
ENV_DENIED = frozenset({
    "attach_meter", "attach_agent_clock", "close", "validate", "datasets", "get_wrapper_attr",
    "set_wrapper_attr", "has_wrapper_attr", "set_step_timeout", "write_bitcode",
})  # fmt: skip
#: What the agent may read of the budget meter.
METER_READINGS = frozenset({
    "budget", "calls", "steps", "seconds", "seconds_left", "room",
    "calls_left", "exhausted", "used", "check",
})  # fmt: skip
#: Modules whose records are sent as plain namespaces (see ``_RefPickler``).
ENV_MODULES = ("optgym.envs.",)
#: The longest error message sent back to the agent, in characters.
MAX_MESSAGE = 2000


class RemoteError(RuntimeError):
    """An error the harness raised that has no built-in type (its name leads the message)."""


# --- the harness's side -----------------------------------------------------------------------


class _RefPickler(pickle.Pickler):
    def __init__(self, file: Any, server: EnvServer):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.server = server

    def persistent_id(self, obj: Any) -> Ref | None:
        return self.server.ref(obj)

    def reducer_override(self, obj: Any) -> Any:
        # A record of an env module (a rollout) crosses the wall as its fields: the env
        # modules' code may be hidden in the sandbox (their simulators are).
        if _env_object(obj) and dataclasses.is_dataclass(obj):
            fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
            return (types.SimpleNamespace, (), fields)
        return NotImplemented


def _env_object(obj: Any) -> bool:
    """Whether ``obj`` is an instance of a class of an env module (see :data:`ENV_MODULES`)."""
    return not isinstance(obj, type) and type(obj).__module__.startswith(ENV_MODULES)


class EnvServer:
    """Serves one sandboxed agent: ``root`` (the env the agent is given, wrapped in the
    runner's budget wrapper) and what it hands out, for ``benchmark`` only."""

    def __init__(self, root: gym.Env, benchmark: str):
        self.benchmark = benchmark
        self._objects: dict[int, Any] = {}
        self._ids: dict[int, int] = {}
        self.ref(root)

    def ref(self, obj: Any) -> Ref | None:
        """The reference under which ``obj`` is sent (None: sent by value)."""
        from optgym.budget import BudgetMeter
        from optgym.env import ObservationView

        if isinstance(obj, gym.Env):
            kind = "env"
        elif isinstance(obj, BudgetMeter):
            kind = "meter"
        elif isinstance(obj, ObservationView) or (
            _env_object(obj) and not dataclasses.is_dataclass(obj)
        ):  # env.observation["Programl"] is computed by the harness, its result sent back
            kind = "object"  # an env's helper that may hold its backend (an instance, a view)
        else:
            return None
        number = self._ids.get(id(obj))
        if number is None:
            number = len(self._objects)
            self._objects[number] = obj
            self._ids[id(obj)] = number
        return Ref(number, kind)

    def release(self, numbers: Any) -> None:
        """Forget objects the agent no longer holds (never the root)."""
        for number in numbers if isinstance(numbers, list) else []:
            if isinstance(number, int) and number > 0:
                obj = self._objects.pop(number, None)
                if obj is not None:
                    self._ids.pop(id(obj), None)

    def _target(self, request: dict, op: str) -> tuple[Any, str]:
        number, name = request.get("ref"), request.get("name")
        obj = self._objects.get(number) if isinstance(number, int) else None
        if obj is None:
            raise ValueError("the request names no object the agent holds")
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
            raise AttributeError("only public names can be reached through the sandbox")
        kind = self.ref(obj).kind  # type: ignore[union-attr]
        if kind == "meter" and name not in METER_READINGS:
            raise AttributeError(
                f"the budget meter's {name!r} cannot be reached from the sandbox; allowed: "
                f"{', '.join(sorted(METER_READINGS))}"
            )
        if kind == "env" and name in ENV_DENIED:
            raise AttributeError(f"the env's {name!r} cannot be reached from the sandbox")
        return obj, name

    def _check_benchmark(self, name: str, args: tuple, kwargs: dict) -> None:
        """A reset or a replay stays on the episode's benchmark."""
        if name == "reset":
            options = kwargs.get("options") or {}
            wanted = options.get("benchmark") if isinstance(options, dict) else None
            if wanted is not None and wanted != self.benchmark:
                raise ValueError(
                    f"a sandboxed agent resets only to its episode's benchmark {self.benchmark}"
                )
        if name == "apply":
            state = args[0] if args else kwargs.get("state")
            if getattr(state, "benchmark", self.benchmark) != self.benchmark:
                raise ValueError(
                    f"a sandboxed agent replays states of its episode's benchmark only "
                    f"({self.benchmark})"
                )

    def serve(self, request: Any) -> tuple:
        """The reply to one request: ``("ok", value)``, ``("method",)`` or
        ``("raised", type name, message)``."""
        try:
            if not isinstance(request, dict):
                raise ValueError("a request must be an object")
            self.release(request.get("release"))
            op = request.get("op")
            if op == "get":
                obj, name = self._target(request, op)
                value = getattr(obj, name)
                if inspect.ismethod(value) or inspect.isbuiltin(value):
                    return ("method",)  # called by the next request (a model is a value)
                return ("ok", value)
            if op == "call":
                obj, name = self._target(request, op)
                args, kwargs = request.get("args", ()), request.get("kwargs", {})
                if not isinstance(args, (list, tuple)) or not isinstance(kwargs, dict):
                    raise ValueError("a call's arguments must be a list and a dict")
                if not all(isinstance(k, str) and k.isidentifier() for k in kwargs):
                    raise ValueError("keyword arguments must be names")
                if self.ref(obj).kind == "env":  # type: ignore[union-attr]
                    self._check_benchmark(name, tuple(args), kwargs)
                method = getattr(obj, name)
                if not callable(method):
                    raise TypeError(f"{name!r} is not a method")
                return ("ok", method(*args, **kwargs))
            if op == "item":
                obj, _ = self._target({**request, "name": "getitem"}, op)
                if self.ref(obj).kind == "meter":  # type: ignore[union-attr]
                    raise TypeError("the budget meter cannot be indexed")
                return ("ok", obj[request.get("key")])
            if op == "set":
                obj, name = self._target(request, op)
                prop = getattr(type(obj), name, None)
                if self.ref(obj).kind != "env" or not (  # type: ignore[union-attr]
                    isinstance(prop, property) and prop.fset is not None
                ):
                    raise AttributeError(f"{name!r} cannot be set from the sandbox (only the "
                                         "env's settable properties can)")  # fmt: skip
                if name == "benchmark" and request.get("value") != self.benchmark:
                    raise ValueError(f"a sandboxed agent's env stays on its episode's "
                                     f"benchmark {self.benchmark}")  # fmt: skip
                setattr(obj, name, request.get("value"))
                return ("ok", None)
            raise ValueError("unknown request; allowed: get, call, item, set")
        except Exception as e:  # noqa: BLE001  the agent's error, sent back to it
            return ("raised", type(e).__name__, str(e)[:MAX_MESSAGE])

    def dumps(self, reply: tuple) -> bytes:
        """``reply`` pickled, envs and meters as references; a value that cannot be pickled
        becomes an error for the agent."""
        buffer = io.BytesIO()
        try:
            _RefPickler(buffer, self).dump(reply)
        except Exception as e:  # noqa: BLE001  an object of the env that cannot travel
            buffer = io.BytesIO()
            why = f"the value cannot be sent into the sandbox ({type(e).__name__}: {e})"
            _RefPickler(buffer, self).dump(("raised", "TypeError", why[:MAX_MESSAGE]))
        return buffer.getvalue()


def serve_until_done(
    sock: socket.socket, server: EnvServer, limit: int = MAX_DATA_BYTES
) -> dict[str, Any]:
    """Answer the agent's requests until it sends ``{"op": "done", ...}`` or
    ``{"op": "failed", ...}``; returns that message. ``ValueError`` for a malformed message,
    :class:`~optgym.agent_channel.ChannelClosed` when the agent's process went away."""
    while True:
        request = decode_data(read_frame(sock, JSON, limit))
        if isinstance(request, dict) and request.get("op") in ("done", "failed"):
            return request
        send_frame(sock, PICKLE, server.dumps(server.serve(request)))


# --- the sandbox's side -----------------------------------------------------------------------


class _RefUnpickler(pickle.Unpickler):
    def __init__(self, file: Any, client: HarnessClient):
        super().__init__(file)
        self.client = client

    def persistent_load(self, pid: Any) -> Any:
        return self.client.proxy(pid)


class HarnessClient:
    """The sandbox's end of the channel: requests go out as data, replies come back."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self._proxies: dict[int, Any] = {}
        self._released: list[int] = []
        self.methods: dict[tuple[str, str], bool] = {}

    def proxy(self, ref: Ref) -> Any:
        """The proxy of the harness's object ``ref`` (one per object)."""
        found = self._proxies.get(ref.id)
        if found is None:
            kinds = {"env": ProxyEnv, "meter": ProxyMeter}
            found = kinds.get(ref.kind, _Remote)(self, ref)
            self._proxies[ref.id] = found
        return found

    def forget(self, ref: Ref) -> None:
        """The agent dropped its proxy of ``ref``: tell the harness with the next request."""
        if self._proxies.pop(ref.id, None) is not None and ref.id:
            self._released.append(ref.id)

    def request(self, message: dict[str, Any]) -> tuple:
        if self._released:
            message["release"], self._released = self._released, []
        send_data(self.sock, message)
        reply = _RefUnpickler(io.BytesIO(read_frame(self.sock, PICKLE)), self).load()
        if reply[0] == "raised":
            _, name, text = reply
            raise rebuild_error(name, text, RemoteError)
        return reply

    def get(self, ref: Ref, name: str) -> Any:
        if self.methods.get((ref.kind, name)):
            return self._method(ref, name)
        reply = self.request({"op": "get", "ref": ref.id, "name": name})
        if reply[0] == "method":
            self.methods[(ref.kind, name)] = True
            return self._method(ref, name)
        return reply[1]

    def _method(self, ref: Ref, name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            message = {"op": "call", "ref": ref.id, "name": name, "args": list(args),
                       "kwargs": kwargs}  # fmt: skip
            return self.request(message)[1]

        call.__name__ = name
        return call

    def set(self, ref: Ref, name: str, value: Any) -> None:
        self.request({"op": "set", "ref": ref.id, "name": name, "value": value})

    def item(self, ref: Ref, key: Any) -> Any:
        return self.request({"op": "item", "ref": ref.id, "key": key})[1]


class _Remote:
    """What every proxy shares: public names are the harness's."""

    def __init__(self, client: HarnessClient, ref: Ref):
        object.__setattr__(self, "_client", client)
        object.__setattr__(self, "_ref", ref)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._client.get(self._ref, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            self._client.set(self._ref, name, value)

    def __getitem__(self, key: Any) -> Any:
        return self._client.item(self._ref, key)

    def __del__(self) -> None:
        try:
            self._client.forget(self._ref)
        except Exception:  # noqa: BLE001  interpreter shutdown
            pass


def _held(name: str, doc: str) -> Any:
    """A read-only property whose value is the harness's attribute ``name`` (for names a base
    class defines, which ``__getattr__`` never sees, and for the documented ones)."""
    return property(lambda self: self._client.get(self._ref, name), doc=doc)


class ProxyMeter(_Remote):
    """The runner's budget meter, read through the harness."""

    exhausted = _held("exhausted", "whether the budget is spent")
    seconds = _held("seconds", "the seconds spent so far")


class ProxyEnv(_Remote, gym.Env):
    """An OptGym env held by the harness: ``reset``, ``step``, ``unwrapped``, the spaces and
    every public attribute and method of the env, as requests."""

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        return self._client.get(self._ref, "reset")(seed=seed, options=options)

    def step(self, action: Any) -> Any:
        return self._client.get(self._ref, "step")(action)

    def render(self) -> Any:
        return self._client.get(self._ref, "render")()

    def close(self) -> None:
        """The harness closes the env when the episode is over."""

    unwrapped = _held("unwrapped", "the env itself, as a proxy")
    action_space = _held("action_space", "the env's action space")
    observation_space = _held("observation_space", "the env's observation space")
    spec = _held("spec", "the env's registration spec")
    metadata = _held("metadata", "the env's metadata")
    render_mode = _held("render_mode", "the env's render mode")

    def __str__(self) -> str:
        return f"<ProxyEnv {self._ref.id} (held by the harness)>"

    __repr__ = __str__


__all__ = [
    "ENV_DENIED", "METER_READINGS", "EnvServer", "HarnessClient", "ProxyEnv", "ProxyMeter",
    "RemoteError", "serve_until_done",
]  # fmt: skip
