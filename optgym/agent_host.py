"""The agent's side of a sandboxed episode: ``python -m optgym.agent_host FD``, started by
:class:`optgym.sandbox.AgentSandbox` inside the sandbox.

It reads one request from the harness on the socket ``FD`` and answers it:

* ``{"op": "describe", "agent": SPEC}``: what the agent's class says of itself (its
  canonical spec, whether it is stochastic, the problems it works on), so that the
  verifier never imports a submitted class in its own process;
* ``{"op": "solve", "agent": SPEC, "task": ..., "benchmark": ..., "budget": ...,
  "seed": ...}``: make the agent, say ``ready``, wait for ``go`` (the harness starts the
  budget's clock then), run ``agent.solve`` on a :class:`~optgym.env_proxy.ProxyEnv`, and
  send back the state it returns.

Every answer is data (:mod:`optgym.agent_channel`); an agent's error is sent as its type
name and message. The submission's code, when there is some, is at
:data:`optgym.sandbox.CODE_MOUNT`, the working folder.
"""

from __future__ import annotations

import os
import pickle
import socket
import sys
from typing import Any

from optgym.agent_channel import PICKLE, Ref, read_frame, send_data
from optgym.sandbox import CODE_MOUNT

#: The longest error message the host sends back, in characters.
MAX_MESSAGE = 2000


def _describe(spec: Any) -> dict[str, Any]:
    return {"canonical": spec.canonical, "stochastic": spec.stochastic,
            "problems": list(spec.problems())}  # fmt: skip


def _preload(task: str) -> None:
    """Import what an episode's process has imported before its clock starts (the local
    executor's fork server does the same), so the agent is not charged for it."""
    import importlib

    from optgym.executors import PRELOAD
    from optgym.tasks import env_entry, get_task

    modules = [*PRELOAD, env_entry(get_task(task)).entry_point.partition(":")[0]]
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:  # an env's module whose backend is hidden in here
            pass


def _answer(sock: socket.socket, request: dict[str, Any]) -> dict[str, Any]:
    from optgym.agents import resolve_agent
    from optgym.budget import Budget
    from optgym.env_proxy import HarnessClient

    spec = resolve_agent(request["agent"])
    if request["op"] == "describe":
        return {"op": "done", "agent": _describe(spec)}
    _preload(request["task"])
    agent = spec.make()
    budget = Budget.parse(request["budget"])
    send_data(sock, {"op": "ready"})
    pickle.loads(read_frame(sock, PICKLE))  # "go": the budget's clock has started
    env = HarnessClient(sock).proxy(Ref(0, "env"))
    result = agent.solve(env, request["benchmark"], budget, request["seed"])
    return {"op": "done", "state": result.state}


def main(argv: list[str]) -> int:
    """Serve one request on the socket whose descriptor is ``argv[0]``."""
    sock = socket.socket(fileno=int(argv[0]))
    request = pickle.loads(read_frame(sock, PICKLE))  # from the harness, which it trusts
    if os.path.isdir(CODE_MOUNT):
        sys.path.append(CODE_MOUNT)  # last: the submission's code shadows nothing
    try:
        answer = _answer(sock, request)
    except BaseException as e:  # noqa: BLE001  the agent's failure is its answer
        answer = {"op": "failed", "error": [type(e).__name__, str(e)[:MAX_MESSAGE]]}
    try:
        send_data(sock, answer)
    except TypeError as e:  # what the agent returned is not data
        send_data(sock, {"op": "failed", "error": ["TypeError", str(e)[:MAX_MESSAGE]]})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
