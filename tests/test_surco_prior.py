"""SurCo-prior on routes: training through the solver raises the train routes' on-time
probability, the weights round-trip, a bad weights file is one clear error, and the shipped
weights beat the expected-value path on validation routes in one solve."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import optgym
from optgym.agents import make_agent
from optgym.agents.surco.prior import SurcoPrior, weights_path
from optgym.budget import Budget

ENV_ID = "optgym/SurrogateOptimization-v0"
# validation routes with a deadline other than the least expected time (seed % 3 != 1)
VALIDATION = [f"generator://routes-v0/{s}" for s in range(1000, 1030) if s % 3 != 1]


@pytest.fixture(scope="module")
def env():
    e = optgym.make(ENV_ID, step_limit=False)
    yield e
    e.close()


def test_training_raises_the_train_routes_probability_and_round_trips(env, tmp_path: Path):
    train = [f"generator://routes-v0/{s}" for s in range(2000, 2030)]
    agent = SurcoPrior(epochs=12, lr=0.003)
    figures = agent.train(env, train, Budget(calls=10_000), seed=0)
    assert figures["routes"] == 30 and figures["solver_calls"] == 2 * 30 * 12
    assert figures["last_epoch_mean_probability"] > figures["first_epoch_mean_probability"]
    agent.save(tmp_path / "prior.pt")
    again = SurcoPrior(path=str(tmp_path / "prior.pt"))
    base = env.unwrapped
    base.reset(options={"benchmark": VALIDATION[0]})
    assert np.array_equal(agent.prior_costs(base), again.prior_costs(base))
    assert again.meta["figures"] == figures


def test_a_bad_weights_file_is_one_clear_error(tmp_path: Path):
    bad = tmp_path / "prior.pt"
    bad.write_bytes(b"\x00secret contents\x00" * 10)
    with pytest.raises(ValueError, match="is not a surco-prior weights file") as info:
        SurcoPrior(path=str(bad))
    assert "secret" not in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ValueError, match="no such surco-prior weights file; make one with"):
        SurcoPrior(path=str(tmp_path / "missing.pt"))


def test_the_shipped_prior_beats_the_expected_value_path_in_one_solve(env):
    assert weights_path().is_file()
    prior, ev = make_agent("surco-prior"), make_agent("ev-path")
    ours = [prior.solve(env, u, Budget(calls=100), seed=0) for u in VALIDATION]
    theirs = [ev.solve(env, u, Budget(calls=100), seed=0).reward for u in VALIDATION]
    assert all(r.budget_used["calls"] == 1 for r in ours)  # one solve: the prior's costs
    assert np.mean([r.reward for r in ours]) > np.mean(theirs) + 0.01
