"""Coreset-NVP (agents/passes/coreset.py): the cover, the values, a small real training run,
the agents under a compilation budget, and malformed weight files."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import optgym
from optgym.agents import make_agent
from optgym.agents.passes.coreset import CoresetNvpAgent, cover, normalized_values
from optgym.budget import Budget


def test_cover_picks_the_largest_gain_first_and_stops_when_nothing_adds():
    ratios = np.array(
        [
            [1.0, 0.5, 1.1, np.nan],
            [0.2, 1.2, 0.3, 0.1],
            [0.9, 0.9, 0.9, 0.1],
        ]
    )
    # column 1 covers most (0.5 + 1.2 + 0.9 = 2.6), then column 2 adds 0.6 on program 0;
    # column 0 adds nothing then, so the cover stops at two
    assert cover(ratios) == [1, 2]
    assert cover(ratios, size=1) == [1]
    values = normalized_values(ratios)
    assert values.max(axis=1) == pytest.approx([1, 1, 1])
    assert values[0, 3] == 0.0  # a failed sequence is worth nothing


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    env = gym.make(
        "optgym/PassOrdering-v0", observation_space="Autophase", reward_space="IrInstructionCountOz"
    )
    agent = CoresetNvpAgent(
        path=None, epochs=20, greedy_steps=3, random_sequences=3, random_length=5
    )
    agent.sequences = []  # not the shipped coreset: this test's own
    uris = [f"generator://csmith-v0/{s}" for s in (5, 6, 7)]
    figures = agent.train(env, uris, Budget(calls=100000), seed=0)
    path = tmp_path_factory.mktemp("coreset") / "c.pt"
    agent.save(path)
    env.close()
    return agent, figures, path


def test_training_builds_a_coreset_and_both_models(trained):
    agent, figures, path = trained
    assert 1 <= figures["coreset"] <= 6 and figures["train_programs"] == 3
    assert figures["validation_programs"] == 3  # csmith's validation seeds, as many as train
    assert len(agent.sequences) == figures["coreset"] and set(agent.nets) == {
        "programl",
        "autophase",
    }
    assert figures["coreset_train_geomean"] > 0
    back = CoresetNvpAgent(path=str(path))
    assert back.sequences == agent.sequences and back.extend == agent.extend


@pytest.mark.parametrize("model", ["programl", "autophase", "none"])
def test_the_agents_keep_the_compilation_budget_and_their_best(trained, model):
    _, _, path = trained
    agent = CoresetNvpAgent(path=str(path), model=model)
    env = gym.make(
        "optgym/PassOrdering-v0", observation_space="Autophase", reward_space="IrInstructionCountOz"
    )
    try:
        result = agent.solve(env, "generator://csmith-v0/1001", Budget(calls=5))
        assert result.budget_used["calls"] <= 5
        assert isinstance(result.actions[0], list)  # a coreset sequence, one compilation
        assert env.unwrapped.validate(result.state).ok
        assert result.reward > 0
    finally:
        env.close()


def test_top_and_no_neighbourhood_spend_only_the_top_sequences(trained):
    _, _, path = trained
    env = gym.make(
        "optgym/PassOrdering-v0", observation_space="Autophase", reward_space="IrInstructionCountOz"
    )
    try:
        agent = CoresetNvpAgent(path=str(path), top=1, neighbourhood=False)
        result = agent.solve(env, "generator://csmith-v0/1001", Budget(calls=45))
        assert result.budget_used["calls"] == 1 and len(result.actions) <= 1
    finally:
        env.close()


def test_registered_agents_load_a_given_file(trained):
    _, _, path = trained
    agent = make_agent(f"coreset-list:path={path}")
    assert agent.model == "none" and agent.sequences


def test_malformed_weight_files_are_refused_with_one_clear_error(tmp_path: Path):
    cases = {
        "text.pt": b"not a torch file at all",
        "empty.pt": b"",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    torch.save({"format": "other"}, tmp_path / "other.pt")
    torch.save(
        {"format": "optgym-coreset-nvp-1", "sequences": [["-nosuch"]], "extend": [], "nets": {}},
        tmp_path / "flag.pt",
    )
    torch.save(
        {"format": "optgym-coreset-nvp-1", "sequences": [], "extend": [], "nets": {}},
        tmp_path / "none.pt",
    )
    for name in ("text.pt", "empty.pt", "other.pt", "flag.pt", "none.pt"):
        with pytest.raises(ValueError, match="is not a coreset-nvp weights file") as e:
            CoresetNvpAgent(path=str(tmp_path / name))
        assert "optgym train coreset-nvp" in str(e.value)
    with pytest.raises(ValueError, match="no such coreset-nvp weights file"):
        CoresetNvpAgent(path=str(tmp_path / "missing.pt"))
    with pytest.raises(ValueError, match="unknown model 'gnn'"):
        CoresetNvpAgent(path=str(tmp_path / "missing.pt"), model="gnn")
    assert optgym  # registers the env ids
