"""Coreset-NVP for ``optgym/PassOrdering-v0`` (after Liang et al., "Learning Compiler Pass
Orders using Coreset and Normalized Value Prediction", ICML 2023).

Three parts, all reimplemented from the paper's description:

1. **Discovery.** On each training program, search collects good pass sequences: the path
   greedy search takes (each step tries every pass on forks of the worker, ``try_actions``)
   and the best of a set of random sequences (each run as one pass-sequence action).
2. **The coreset.** Every candidate is run on every training program, giving a matrix of
   ``-Oz instructions / instructions`` ratios; a greedy submodular cover picks at most
   :data:`CORESET_SIZE` sequences, each the one that most raises the summed best-of-coreset
   ratio over the training programs (facility location: monotone and submodular, so the
   greedy choice is within ``1 - 1/e`` of the best cover of its size). The order of picking
   is the coreset's best-first order.
3. **Normalized value prediction.** A network maps the unoptimized program to each coreset
   sequence's normalized value: its ratio divided by the program's best coreset ratio (1 for
   the program's best sequence), as the paper normalizes per program. ``model="programl"``
   is a GNN over the ``Programl`` graph (:class:`ProgramlExtractor`'s embeddings and message
   passing); ``model="autophase"`` an MLP over the 56 Autophase features, the ablation.

Agents: ``coreset-nvp`` runs the sequences in the order the network ranks them, each as one
pass-sequence action (one compilation), then spends what is left of the budget on the best
one's neighbourhood (appending the passes that most often helped in discovery, a greedy
step at a time); ``coreset-list`` runs the coreset in its fixed best-first order with no
model, the paper's ablation. Both keep the best state found.

Weights and coreset ship in one file (``agents/weights/coreset-nvp.pt``: tensors, lists and
numbers only, loaded with ``torch.load(weights_only=True)``), made by :data:`MAKE_COMMAND`.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from optgym.agents.passes.gnn import ProgramlExtractor
from optgym.agents.protocol import Result, metered, solved
from optgym.budget import Budget
from optgym.envs.passes.actions import FLAGS, action_index
from optgym.threads import torch_threads

#: The most sequences a coreset holds (the paper's is about 50).
CORESET_SIZE = 50
#: What the shipped weights are called, in ``optgym/agents/weights``.
WEIGHTS_NAME = "coreset-nvp.pt"
MODELS = ("programl", "autophase")
#: The command that made the shipped weights (the README gives its time).
MAKE_COMMAND = (
    "optgym train coreset-nvp --task pass-ordering-45 --dataset benchmark://debian-train-v0 "
    "--dataset generator://csmith-v0 --dataset generator://llvm-stress-v0 --episodes 30 "
    "--budget calls=5000000 --out agents/weights/coreset-nvp.pt"
)


def default_weights_path() -> Path:
    """``optgym/agents/weights/coreset-nvp.pt``."""
    return Path(__file__).resolve().parent.parent / "weights" / WEIGHTS_NAME


def _ratio(env: Any) -> float:
    obs = env.observation
    return float(obs["IrInstructionCountOz"][0]) / max(float(obs["IrInstructionCount"][0]), 1.0)


def sequence_ratios(env: Any, sequences: Sequence[Sequence[int]]) -> np.ndarray:
    """``-Oz instructions / instructions`` after each of ``sequences`` run as one action on a
    fork of ``env`` (unwrapped, just reset); NaN where LLVM failed. ``env`` stays as it is."""
    out = np.full(len(sequences), np.nan)
    for i, seq in enumerate(sequences):
        copy = env.fork()
        try:
            info = copy.step(list(seq))[4]
            if "error" not in info:
                out[i] = _ratio(copy)
        finally:
            copy.close()
    return out


def greedy_path(env: Any, max_steps: int = 40) -> list[int]:
    """The passes greedy search takes from ``env``'s state (each step the pass with the
    largest reward over every pass, tried on forks), until no pass gains or ``max_steps``."""
    path: list[int] = []
    for _ in range(max_steps):
        tried = env.try_actions(list(range(env.action_space.n)))
        gains = np.where(np.isnan(tried), -np.inf, tried)
        if gains.max() <= 1e-12:
            break
        action = int(np.argmax(gains))
        if "error" in env.step(action)[4]:
            break
        path.append(action)
    return path


def cover(ratios: np.ndarray, size: int = CORESET_SIZE) -> list[int]:
    """Greedy submodular cover: the columns (candidate sequences) of ``ratios`` (programs x
    candidates, NaN as 0) that maximize ``sum over programs of max over chosen columns``,
    picked one at a time, each the largest gain; at most ``size``, stopping when no column
    adds anything. The picking order is best-first."""
    r = np.nan_to_num(ratios, nan=0.0)
    chosen: list[int] = []
    best = np.zeros(r.shape[0])
    for _ in range(min(size, r.shape[1])):
        gains = np.maximum(r, best[:, None]).sum(axis=0) - best.sum()
        gains[chosen] = -np.inf
        j = int(np.argmax(gains))
        if gains[j] <= 1e-12 and chosen:
            break
        chosen.append(j)
        best = np.maximum(best, r[:, j])
    return chosen


def normalized_values(ratios: np.ndarray) -> np.ndarray:
    """Each row divided by its largest entry (NaN as 0): 1 for the program's best."""
    r = np.nan_to_num(ratios, nan=0.0)
    return r / np.maximum(r.max(axis=1, keepdims=True), 1e-9)


def _graph_space() -> spaces.Dict:
    """A stand-in padded-graph space: :class:`ProgramlExtractor` reads only feature counts."""
    box = spaces.Box(-1e9, 1e9, shape=(1, 2))
    return spaces.Dict(
        {
            "nodes": box,
            "edge_index": spaces.Box(0, 1e9, shape=(2, 1)),
            "edge_attr": box,
            "num_nodes": spaces.Box(0, 1e9, shape=(1,)),
            "num_edges": spaces.Box(0, 1e9, shape=(1,)),
        }
    )


class ValueNet(nn.Module):
    """Program -> the normalized value of each of ``outputs`` coreset sequences."""

    def __init__(self, model: str, outputs: int, hidden: int = 64) -> None:
        super().__init__()
        if model not in MODELS:
            raise ValueError(f"unknown model {model!r}; allowed: {', '.join(MODELS)}")
        self.model = model
        if model == "programl":
            self.graph = ProgramlExtractor(_graph_space(), hidden=hidden, layers=3)
            width = 2 * hidden
        else:
            self.mlp = nn.Sequential(nn.Linear(56, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU())
            width = 128
        self.out = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, outputs))

    def forward(self, features: Any) -> torch.Tensor:
        """``features``: a torch-geometric batch (``programl``) or ``(batch, 56)`` scaled
        Autophase features (``autophase``)."""
        if self.model == "programl":
            return self.out(self.graph.pooled(features))
        return self.out(self.mlp(features))


def autophase_features(obs: Any) -> torch.Tensor:
    """``log1p`` of the 56 Autophase counts, as floats."""
    return torch.log1p(torch.as_tensor(np.asarray(obs, dtype=np.float64)).float().clamp(min=0))


def graph_batch(graphs: Sequence[Any]) -> Any:
    """Env ``Programl`` graphs as one float-featured torch-geometric batch."""
    from torch_geometric.data import Batch, Data

    return Batch.from_data_list(
        [
            Data(x=g.x.float(), edge_index=g.edge_index, edge_attr=g.edge_attr.float())
            for g in graphs
        ]
    )


@dataclass
class CoresetNvpAgent:
    """Runs the coreset's sequences best-predicted first, one compilation each, then spends
    what is left on the best one's neighbourhood; keeps the best state.

    ``path``: the weights and coreset file (default: the shipped one); ``model``:
    ``programl`` (the GNN), ``autophase`` (the MLP ablation) or ``none`` (the coreset's fixed
    best-first order, the ``coreset-list`` agent); ``top``: how many sequences to run before
    the neighbourhood search (0: as many as the budget allows)."""

    stochastic: ClassVar[bool] = False  # the seed changes nothing

    path: str | None = None
    """the weights and coreset file (default: the shipped agents/weights/coreset-nvp.pt)"""
    model: str = "programl"
    """programl (the GNN), autophase (the MLP ablation) or none (the coreset's own order)"""
    top: int = 0
    """the most sequences run before the neighbourhood search (0: all the budget allows)"""
    neighbourhood: bool = True
    """spend what the sequences leave of the budget on the best one's neighbourhood"""
    epochs: int = 300
    """training: epochs of the value network"""
    greedy_steps: int = 25
    """discovery: the most greedy steps per training program"""
    random_sequences: int = 20
    """discovery: random sequences tried per training program"""
    random_length: int = 30
    """discovery: passes in each random sequence"""
    random_keep: int = 1
    """discovery: the best random sequences of each program kept as candidates"""
    max_instructions: int = 40000
    """training: programs larger than this (unoptimized) are left out"""
    generated: int = 10
    """training: the most programs of each generator (csmith-v0, llvm-stress-v0) used"""
    workers: int = 2
    """training: envs run at once (threads, each with its own LLVM worker)"""

    sequences: list[list[int]] = field(default_factory=list, init=False, repr=False)
    extend: list[int] = field(default_factory=list, init=False, repr=False)
    nets: dict[str, ValueNet] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.model not in (*MODELS, "none"):
            raise ValueError(f"unknown model {self.model!r}; allowed: programl, autophase, none")
        for name in (
            "top", "epochs", "greedy_steps", "random_sequences", "random_length", "random_keep",
            "max_instructions", "generated", "workers",
        ):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        path = default_weights_path() if self.path is None else Path(self.path)
        if self.path is not None or path.is_file():
            self.load(path)

    # ---- solving ---------------------------------------------------------------------------

    def ranking(self, env: Any) -> list[int]:
        """The coreset's indices, best-predicted first, for the program ``env`` (unwrapped,
        just reset) holds."""
        if self.model == "none" or self.model not in self.nets:
            return list(range(len(self.sequences)))
        net = self.nets[self.model]
        # one thread: the same ranking wherever it runs (sums over more threads round
        # differently, and a tie could then change the best state a rerun finds)
        with torch.no_grad(), torch_threads(1):
            if self.model == "programl":
                pred = net(graph_batch([env.observation["Programl"]]))[0]
            else:
                pred = net(autophase_features(env.observation["Autophase"])[None])[0]
        # ties keep the coreset's own order (stable sort)
        return [int(i) for i in np.argsort(-pred.numpy(), kind="stable")]

    def solve(
        self, env: gym.Env, benchmark: str, budget: Budget, seed: int | None = None
    ) -> Result:
        if not self.sequences:
            raise ValueError(
                "the coreset agent has no coreset: train it (optgym train coreset-nvp) or give "
                "path= a weights file"
            )
        base = env.unwrapped
        with metered(env, budget, self, benchmark=benchmark, seed=seed) as meter:
            order = self.ranking(base)
            if self.top:
                order = order[: self.top]
            best, best_ratio = base.state, _ratio(base)
            for index in order:
                if meter.room() == 0:
                    break
                base.reset(seed=seed, options={"benchmark": benchmark})
                info = base.step(list(self.sequences[index]))[4]
                if "error" not in info and _ratio(base) > best_ratio:
                    best, best_ratio = base.state, _ratio(base)
            if self.neighbourhood and meter.room() > 1 and self.extend and best.actions:
                best = self._neighbourhood(base, best, meter, seed)
            return solved(env, meter, best)

    def _neighbourhood(self, base: Any, best: Any, meter: Any, seed: int | None) -> Any:
        """From the best state, greedy steps over the passes that most often helped in
        discovery, each tried on a fork (one compilation each), while the budget lasts."""
        base.reset(seed=seed, options={"benchmark": best.benchmark})
        base.step(list(best.actions[0]))  # the best sequence, one compilation
        for action in best.actions[1:]:
            base.step(action)
        while meter.room() > 1:
            tried = base.try_actions(self.extend[: meter.room(reserve=1)])
            gains = np.where(np.isnan(tried), -np.inf, tried)
            if not len(gains) or gains.max() <= 1e-12:
                break
            if "error" in base.step(self.extend[int(np.argmax(gains))])[4]:
                break
        return base.state if base.episode_reward > best.reward + 1e-12 else best

    # ---- training --------------------------------------------------------------------------

    def train(
        self,
        env: gym.Env,
        benchmarks: list[str],
        budget: Budget,
        seed: int = 0,
        progress: bool = False,
    ) -> dict[str, Any]:
        """Discovery on ``benchmarks`` (train programs of at most ``max_instructions``
        instructions, at most ``generated`` of each generator), the cover, the value
        matrices of train and validation programs, and both networks; the figures. Work runs
        in ``workers`` envs of ``env``'s settings at once, counted by ``env``'s meter."""
        base = env.unwrapped
        t0 = time.perf_counter()
        with _Envs(base, self.workers) as envs:
            sizes = envs.map(_size, benchmarks, "sizes", progress)
            uris = _training_programs(benchmarks, sizes, self.max_instructions, self.generated)
            found = envs.map(
                lambda e, i_uri: self._discover(e, i_uri[1], seed * 100003 + i_uri[0]),
                list(enumerate(uris)),
                "discovery",
                progress,
            )
            candidates: list[tuple[int, ...]] = []
            helped: Counter[int] = Counter()
            for path, seqs in found:
                helped.update(path)
                candidates.extend(s for s in seqs if s not in candidates)
            discovery_seconds = time.perf_counter() - t0
            train_ratios, train_feats = self._matrix(envs, uris, candidates, progress, "train")
            chosen = cover(train_ratios)
            self.sequences = [list(candidates[j]) for j in chosen]
            self.extend = [a for a, _ in helped.most_common()]
            val_uris = validation_uris(uris)
            val_ratios, val_feats = self._matrix(
                envs, val_uris, self.sequences, progress, "validation"
            )
        train_ratios = train_ratios[:, chosen]
        figures: dict[str, Any] = {
            "train_programs": len(uris),
            "train_programs_skipped": len(benchmarks) - len(uris),
            "validation_programs": len(val_uris),
            "candidates": len(candidates),
            "coreset": len(self.sequences),
            "discovery_seconds": round(discovery_seconds, 1),
            "matrix_seconds": round(time.perf_counter() - t0 - discovery_seconds, 1),
            "coreset_train_geomean": _geomean(np.nanmax(train_ratios, axis=1)),
            "coreset_validation_geomean": _geomean(np.nanmax(val_ratios, axis=1)),
        }
        for k in (1, 5, 10, 20):
            figures[f"list_validation_top{k}_geomean"] = _geomean(
                np.nanmax(val_ratios[:, :k], axis=1)
            )
        for model in MODELS:
            t1 = time.perf_counter()
            self.nets[model] = _fit(
                model, train_feats[model], normalized_values(train_ratios), self.epochs, seed
            )
            figures[f"{model}_train_seconds"] = round(time.perf_counter() - t1, 1)
            for k in (1, 5, 10, 20):
                figures[f"{model}_validation_top{k}_geomean"] = _geomean(
                    _top_k(self.nets[model], model, val_feats[model], val_ratios, k)
                )
        figures["seconds"] = round(time.perf_counter() - t0, 1)
        self.figures = figures
        return figures

    def _discover(self, env: Any, uri: str, seed: int) -> tuple[list[int], list[tuple[int, ...]]]:
        """On one program: greedy's path, and it with the best random sequences."""
        rng = np.random.default_rng(seed)
        env.reset(options={"benchmark": uri})
        path = greedy_path(env, self.greedy_steps)
        env.reset(options={"benchmark": uri})
        seqs = [
            tuple(int(a) for a in rng.integers(0, env.action_space.n, self.random_length))
            for _ in range(self.random_sequences)
        ]
        r = np.nan_to_num(sequence_ratios(env, seqs), nan=0.0)
        best = [seqs[i] for i in np.argsort(-r, kind="stable")[: self.random_keep] if r[i] > 0]
        return path, ([tuple(path)] if path else []) + best

    def _matrix(
        self,
        envs: _Envs,
        uris: Sequence[str],
        sequences: Sequence[Sequence[int]],
        progress: bool,
        what: str,
    ) -> tuple[np.ndarray, dict[str, list[Any]]]:
        def row(env: Any, uri: str) -> tuple[Any, Any, np.ndarray]:
            env.reset(options={"benchmark": uri})
            graph = env.observation["Programl"]
            phase = autophase_features(env.observation["Autophase"])
            return graph, phase, sequence_ratios(env, sequences)

        rows = envs.map(row, uris, f"values ({what})", progress)
        ratios = np.array([r[2] for r in rows]).reshape(len(uris), len(sequences))
        return ratios, {"programl": [r[0] for r in rows], "autophase": [r[1] for r in rows]}

    # ---- saving ----------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """The coreset (flag names), the neighbourhood's passes and both networks' weights."""
        torch.save(
            {
                "format": "optgym-coreset-nvp-1",
                "sequences": [[FLAGS[a] for a in s] for s in self.sequences],
                "extend": [FLAGS[a] for a in self.extend],
                "nets": {m: net.state_dict() for m, net in self.nets.items()},
                "figures": {
                    k: float(v) for k, v in getattr(self, "figures", {}).items() if _number(v)
                },
                "made_by": MAKE_COMMAND,
            },
            path,
        )

    def load(self, path: str | Path) -> None:
        """Read what :meth:`save` wrote; ``ValueError`` names a file that is not one."""
        path = Path(path)
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
            if data.get("format") != "optgym-coreset-nvp-1":
                raise ValueError("no optgym-coreset-nvp-1 format tag")
            sequences = [[action_index(f) for f in s] for s in data["sequences"]]
            extend = [action_index(f) for f in data["extend"]]
            if not sequences or len(sequences) > CORESET_SIZE or not all(sequences):
                raise ValueError(f"it must hold 1 to {CORESET_SIZE} non-empty sequences")
            nets = {}
            for model, state in data["nets"].items():
                net = ValueNet(model, len(sequences))
                net.load_state_dict(state)
                nets[model] = net.eval()
        except FileNotFoundError:
            raise ValueError(f"{path}: no such coreset-nvp weights file") from None
        except Exception as e:  # noqa: BLE001  any malformed file: one clear error
            raise ValueError(
                f"{path} is not a coreset-nvp weights file ({type(e).__name__}: "
                f"{str(e)[:200]}); make one with: {MAKE_COMMAND}"
            ) from None
        self.sequences, self.extend, self.nets = sequences, extend, nets
        self.figures = dict(data.get("figures", {}))


def validation_uris(train_uris: Sequence[str]) -> list[str]:
    """The validation programs beside the training ones: debian-train-v0's validation split
    and as many validation seeds of each generator as it has train URIs (at most 20)."""
    from optgym.datasets.passes import CsmithDataset, LlvmStressDataset
    from optgym.datasets.passes.debian import DebianTrainDataset

    out: list[str] = []
    for ds in (DebianTrainDataset(), CsmithDataset(), LlvmStressDataset()):
        n = sum(u.startswith(ds.uri + "/") for u in train_uris)
        if n:
            out.extend(ds.take("validation", min(n, 20)))
    return out


def _fit(model: str, feats: list[Any], targets: np.ndarray, epochs: int, seed: int) -> ValueNet:
    torch.manual_seed(seed)
    net = ValueNet(model, targets.shape[1])
    opt = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-4)
    y = torch.as_tensor(targets, dtype=torch.float32)
    n = len(feats)
    batch = 8
    for _ in range(epochs if model == "autophase" else max(epochs // 10, 1)):
        perm = torch.randperm(n)
        for k in range(0, n, batch):
            idx = perm[k : k + batch]
            x = (
                graph_batch([feats[i] for i in idx])
                if model == "programl"
                else torch.stack([feats[i] for i in idx])
            )
            loss = nn.functional.mse_loss(net(x), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


def _top_k(net: ValueNet, model: str, feats: list[Any], ratios: np.ndarray, k: int) -> np.ndarray:
    """Per program, the best ratio among the ``k`` sequences the net ranks highest."""
    out = []
    with torch.no_grad():
        for i, f in enumerate(feats):
            x = graph_batch([f]) if model == "programl" else f[None]
            order = np.argsort(-net(x)[0].numpy(), kind="stable")[:k]
            out.append(np.nanmax(ratios[i, order]))
    return np.asarray(out)


def _geomean(values: np.ndarray) -> float:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    return round(float(np.exp(np.log(v).mean())), 4) if len(v) else float("nan")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _bar(items: Any, desc: str, progress: bool, total: int | None = None) -> Any:
    if not progress:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="program", total=total)


def _size(env: Any, uri: str) -> int:
    env.reset(options={"benchmark": uri})
    return int(env.observation["IrInstructionCount"][0])


def _training_programs(
    uris: Sequence[str], sizes: Sequence[int], max_instructions: int, generated: int
) -> list[str]:
    """``uris`` of at most ``max_instructions`` instructions, at most ``generated`` of each
    ``generator://`` dataset, in their order."""
    out: list[str] = []
    per: Counter[str] = Counter()
    for uri, size in zip(uris, sizes, strict=True):
        dataset = uri.rsplit("/", 1)[0]
        if size > max_instructions or (
            uri.startswith("generator://") and per[dataset] >= generated
        ):
            continue
        per[dataset] += 1
        out.append(uri)
    return out


class _Envs:
    """``n`` envs of ``base``'s id and settings, charged to ``base``'s meter, that
    :meth:`map` runs a function over items with, ``n`` at once (threads: the work is in
    each env's own LLVM worker)."""

    def __init__(self, base: Any, n: int) -> None:
        self.base, self.n = base, max(n, 1)
        self.envs: list[Any] = []

    def __enter__(self) -> _Envs:
        for _ in range(self.n):
            env = gym.make(self.base.env_id, **self.base.config).unwrapped
            env.attach_meter(self.base.meter)
            self.envs.append(env)
        return self

    def __exit__(self, *exc: Any) -> None:
        for env in self.envs:
            env.close()

    def map(self, fn: Any, items: Sequence[Any], desc: str, progress: bool) -> list[Any]:
        import queue
        from concurrent.futures import ThreadPoolExecutor

        free: queue.Queue[Any] = queue.Queue()
        for env in self.envs:
            free.put(env)

        def one(item: Any) -> Any:
            env = free.get()
            try:
                return fn(env, item)
            finally:
                free.put(env)

        with ThreadPoolExecutor(self.n) as pool:
            return list(_bar(pool.map(one, items), desc, progress, len(items)))
