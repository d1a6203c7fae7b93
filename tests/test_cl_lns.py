"""CL-LNS (agents/lns/cl_lns.py): the InfoNCE loss, expert collection on a small instance,
the agent's inputs and an episode with the shipped weights, and bad weight files."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from ilp_instances import lns_env, vertex_cover

import optgym  # noqa: F401
from optgym.agents import make_agent
from optgym.agents.lns.cl_lns import (
    AGENT_DEFAULTS,
    NEGATIVE_SHARE,
    POSITIVE_SHARE,
    ClLns,
    EpisodeInputs,
    ExpertSettings,
    collect_expert,
    fit,
    rank_accuracy,
    weights_path,
)
from optgym.budget import Budget


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> str:
    return vertex_cover(tmp_path_factory.mktemp("cl-lns") / "mvc.mps")  # 250 nodes


def _synthetic_states(count: int = 4) -> list[tuple[dict, dict]]:
    """Random bipartite graphs whose 'good' variables (objective column > 0.5) make the
    positives; negatives are sets of the others."""
    rng = np.random.default_rng(0)
    states = []
    for _ in range(count):
        n, m, e = 40, 20, 120
        static = np.zeros((n + m, 8), dtype=np.float32)
        static[:n, 1] = rng.random(n)
        static[:n, 2] = 1.0
        static[n:, 0] = 1.0
        edge_index = np.stack([rng.integers(0, n, e), rng.integers(0, m, e)])
        good = np.flatnonzero(static[:n, 1] > 0.5)
        bad = np.flatnonzero(static[:n, 1] <= 0.5)
        d = {
            "n": n,
            "static": torch.from_numpy(static),
            "edge_index": torch.from_numpy(edge_index),
            "edge_attr": torch.ones(e, 1),
        }
        s = {
            "var_x": torch.from_numpy(static[:n, 4:8].copy()),
            "positives": [torch.from_numpy(rng.choice(good, 5, replace=False)) for _ in range(2)],
            "negatives": [torch.from_numpy(rng.choice(bad, 5, replace=False)) for _ in range(6)],
        }
        states.append((d, s))
    return states


def test_info_nce_training_ranks_positives_above_negatives():
    states = _synthetic_states()
    net, losses = fit(states, hidden=16, rounds=2, width=4, tau=0.07, epochs=40, lr=1e-2, seed=0)
    assert losses[-1] < 0.5 * losses[0]
    assert rank_accuracy(net, states) == 1.0


def test_expert_collection_labels_by_improvement(small):
    with lns_env(small, subproblem_time=0.3, time_budget=300.0) as e:
        settings = ExpertSettings(
            states=3, lb_time=0.5, eval_time=0.3, positive_tries=1, random_tries=2,
            negative_tries=2,
        )  # fmt: skip
        data = collect_expert(e, small, settings, seed=0)
        assert data["n"] == e.problem.n and data["static"].shape[1] == 8
    assert data["states"], "no state with both positives and negatives"
    for s in data["states"]:
        best = s["best_gain"]
        assert best > 0 and s["positives"] and s["negatives"]
        assert (s["positive_gains"] >= POSITIVE_SHARE * best).all()
        assert (s["negative_gains"] < NEGATIVE_SHARE * best).all()
        assert float(s["positive_gains"].max()) == best  # the best set is a positive
        assert s["var_x"].shape == (data["n"], 4)


def test_episode_inputs_follow_the_observation(small):
    with lns_env(small, subproblem_time=0.2, time_budget=60.0) as e:
        e.reset(options={"benchmark": small})
        inputs = EpisodeInputs(e)
        rng = np.random.default_rng(0)
        for _ in range(3):
            e.step(rng.random(e.problem.n))
            inputs.stepped(e)
            graph = e.observation["BipartiteGraph"]["graph"]
            n = e.problem.n
            assert np.allclose(inputs.var_x.numpy(), graph.nodes[:n], atol=1e-5)
            assert np.allclose(inputs.cons_x.numpy(), graph.nodes[n:], atol=1e-5)


@pytest.mark.parametrize("sample", [False, True])
def test_agent_runs_with_the_shipped_weights(sample):
    assert weights_path("vertex-cover").is_file()
    env = gym.make("optgym/ILPNeighborhood-v0", time_budget=12.0, subproblem_time=0.5)
    try:
        agent = make_agent(f"cl-lns:sample={str(sample).lower()}")
        result = agent.solve(env, "generator://vertex-cover-s-v0/0", Budget(seconds=5), seed=0)
        extras = result.state.extras
        assert extras["objective"] <= extras["initial_objective"]
        assert len(result.state.actions) >= 1
        assert env.unwrapped.validate(result.state).ok
    finally:
        env.close()


def test_bad_weights_are_a_clear_value_error(tmp_path, small):
    missing = tmp_path / "none.pt"
    with pytest.raises(ValueError, match="none.pt: no such cl-lns weights file"):
        ClLns(path=str(missing))
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="garbage.pt is not a cl-lns weights file"):
        ClLns(path=str(garbage))
    wrong = tmp_path / "wrong.pt"
    torch.save({"format": "something-else"}, wrong)
    with pytest.raises(ValueError, match="wrong.pt is not a cl-lns weights file"):
        ClLns(path=str(wrong))
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(weights_path("vertex-cover").read_bytes()[:100])
    with pytest.raises(ValueError, match="truncated.pt is not a cl-lns weights file"):
        ClLns(path=str(truncated))
    # a file:// instance has no family: the error names the setting to give
    with lns_env(small, subproblem_time=0.2, time_budget=2.0) as e:
        with pytest.raises(ValueError, match="path="):
            ClLns().solve(e, small, Budget(seconds=1), seed=0)


def test_agent_settings_default_per_family_and_given_ones_win():
    agent = make_agent("cl-lns")
    for family in ("vertex-cover", "independent-set", "set-cover", "auction"):
        chosen = agent.settings_for(f"generator://{family}-s-v0/1000")
        defaults = AGENT_DEFAULTS.get(family, {})
        assert chosen["subproblem_time"] == defaults.get("subproblem_time")
        assert chosen["lp"] is defaults.get("lp", True)
        assert chosen["sample"] is defaults.get("sample", False)
        assert chosen["head_start"] == defaults.get("head_start", 0)
        assert chosen["rescore"] == defaults.get("rescore", 1)
        assert chosen["k_reset"] is defaults.get("k_reset", False)
    given = make_agent(
        "cl-lns:subproblem_time=1.5,lp=true,sample=false,head_start=2,rescore=3,"
        "k_reset=false,temperature=2"
    )
    chosen = given.settings_for("generator://vertex-cover-s-v0/1000")
    assert chosen == {
        "subproblem_time": 1.5, "lp": True, "sample": False, "head_start": 2.0, "rescore": 3,
        "temperature": 2.0, "k_reset": False,
    }  # fmt: skip
    # an instance of no family keeps the env's sub-MIP time, the LP column and the top k
    none = {
        "subproblem_time": None, "lp": True, "sample": False, "head_start": 0.0, "rescore": 1,
        "temperature": 1.0, "k_reset": False,
    }  # fmt: skip
    assert ClLns().settings_for("file:///x.mps") == none
    for bad, match in (
        ({"subproblem_time": 0.0}, "subproblem_time"),
        ({"warmup": -1}, "warmup"),
        ({"rescore": 0}, "rescore must be a positive integer, got 0"),
        ({"head_start": -1.0}, "head_start must be >= 0 CPU seconds"),
        ({"temperature": float("nan")}, "temperature must be > 0"),
    ):
        with pytest.raises(ValueError, match=match):
            ClLns(**bad)


def test_head_start_frees_everything_first_and_k_reset_restarts_k(small):
    path = str(weights_path("vertex-cover"))
    with lns_env(small, subproblem_time=0.2, time_budget=8.0) as e:
        e.reset(options={"benchmark": small})
        n_int = len(e.problem.int_indices)
        agent = ClLns(path=path, head_start=0.5, k_reset=True, rescore=2, sample=True)
        result = agent.solve(e, small, Budget(seconds=8), seed=0)
        sizes = result.state.actions
        assert sizes[0] == n_int  # the head start: SCIP on the whole problem
        # k_reset: each learned step frees k_start * n_int after an improving step
        assert sizes[1] == round(e.k_start * n_int)
        assert all(size <= e.k_max * n_int + 1 for size in sizes[1:])
        # the env's controls are as they were
        assert e.neighborhood_size is None and e.subproblem_time == 0.2
        assert e.validate(result.state).ok


def test_episode_inputs_without_lp_leave_the_lp_column_zero(small):
    with lns_env(small, subproblem_time=0.2, time_budget=60.0) as e:
        e.reset(options={"benchmark": small})
        calls = []
        e.lp_features = lambda: calls.append(1)  # no LP solve: its CPU time is not charged
        inputs = EpisodeInputs(e, lp=False)
        assert not calls
        assert not inputs.var_x[:, 7].any()
        graph = e.observation["BipartiteGraph"]["graph"]
        assert np.allclose(inputs.var_x[:, :7].numpy(), graph.nodes[: e.problem.n, :7], atol=1e-5)
