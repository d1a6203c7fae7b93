"""LLVM pass ordering (``optgym/PassOrdering-v0``): docs/architecture.md#problems."""

from __future__ import annotations

from typing import Any

from optgym.budget import Budget
from optgym.problem import EnvEntry, EnvExample, Problem, Resources, Task


def instruction_count_vs_oz(env: Any) -> float:
    """-Oz's instruction count divided by the episode's: > 1 beats -Oz."""
    obs = env.unwrapped.observation
    return float(obs["IrInstructionCountOz"][0]) / max(float(obs["IrInstructionCount"][0]), 1.0)


_DATA = "optgym.datasets.passes"
PROBLEM = Problem(
    name="pass-ordering",
    title="LLVM pass ordering (CompilerGym's llvm-v0 on LLVM 19)",
    envs=(
        EnvEntry(
            "optgym/PassOrdering-v0",
            "optgym.envs.passes.env:PassOrderingEnv",
            EnvExample("generator://csmith-v0/5", {"observation_space": "InstCount"}, steps=3),
            # the env never ends an episode; 45 passes is a training episode (the runner
            # makes its envs without a step limit: the budget ends a search)
            max_episode_steps=45,
        ),
    ),
    datasets=(
        f"{_DATA}:CsmithDataset",
        f"{_DATA}:LlvmStressDataset",
        f"{_DATA}.debian:DebianDataset",
        f"{_DATA}.debian:DebianTrainDataset",
    ),
    tasks=(
        Task(
            name="pass-ordering",
            env_id="optgym/PassOrdering-v0",
            env_kwargs={"observation_space": "Autophase", "reward_space": "IrInstructionCountOz"},
            datasets=(("generator://csmith-v0", "test"), ("benchmark://debian-v0", "test")),
            budget=Budget(calls=2000),
            score=instruction_count_vs_oz,
            score_name="IR instruction count reduction vs -Oz (geomean)",
            reference_agents=("oz", "o3", "random"),
            reference=(1.0, "-Oz (1.0)"),
            board_size=2,
        ),
        Task(
            # The Coreset-NVP paper's setting: 45 compilations (a pass, a pass sequence or a
            # reference pipeline each) on programs no agent trained on.
            name="pass-ordering-45",
            env_id="optgym/PassOrdering-v0",
            env_kwargs={"observation_space": "Autophase", "reward_space": "IrInstructionCountOz"},
            datasets=(("generator://csmith-v0", "test"), ("benchmark://debian-v0", "test")),
            budget=Budget(calls=45),
            score=instruction_count_vs_oz,
            score_name="IR instruction count reduction vs -Oz (geomean), 45 compilations",
            reference_agents=(
                "oz",
                "o3",
                "random",
                "greedy",
                "ppo-gnn",
                "coreset-list",
                "coreset-nvp",
            ),
            reference=(1.0, "-Oz (1.0)"),
            board_size=10,
        ),
    ),
    agents={
        "oz": ("optgym.agents.reference:ReferenceAgent:reference=Oz", "LLVM's -Oz pipeline"),
        "o3": ("optgym.agents.reference:ReferenceAgent:reference=O3", "LLVM's -O3 pipeline"),
        "o0": ("optgym.agents.reference:ReferenceAgent:reference=O0", "no optimization"),
        "random": ("optgym.agents.passes.random_search:RandomSearchAgent", ""),
        "greedy": ("optgym.agents.passes.greedy:GreedySearchAgent", ""),
        "sequences": ("optgym.agents.passes.sequence_list:SequenceListAgent", ""),
        "coreset-nvp": (
            "optgym.agents.passes.coreset:CoresetNvpAgent",
            "Coreset-NVP: the coreset ranked by a Programl GNN",
        ),
        "coreset-autophase": (
            "optgym.agents.passes.coreset:CoresetNvpAgent:model=autophase",
            "Coreset-NVP's ablation: the coreset ranked by an Autophase MLP",
        ),
        "coreset-list": (
            "optgym.agents.passes.coreset:CoresetNvpAgent:model=none",
            "the Coreset-NVP coreset in its fixed best-first order, no model",
        ),
        "ppo-gnn": (
            "optgym.agents.sb3:Sb3Agent:path=ppo-passes",
            "PPO with the Programl GNN, trained by optgym train (agents/weights/ppo-passes)",
        ),
    },
    # What one episode asks a Ray cluster for: peak 267 MiB measured on a csmith program (LLVM
    # worker included).
    resources=Resources(cpus=1, memory_mb=512),
    # LLVM: its libraries and tools (the native bridge links libLLVM), hidden from sandboxed
    # agents so that every compilation is the env's, and counted
    backends=("/usr/lib/llvm-*", "/usr/lib/*/libLLVM*"),
)
