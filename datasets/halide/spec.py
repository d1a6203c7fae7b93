"""Pipelines as pure data: input tensors and a topologically ordered list of operator stages.

Shapes are in Halide order: ``x`` (fastest, contiguous) first, then ``y``, then ``c``; a
numpy array of the same tensor has the reversed shape. Every stage is one Halide Func defined
over an infinite domain; ``shape`` is the extent the stage nominally has (the output's is the
region realized), while the input buffers cover whatever bounds inference requires (see
:func:`optgym.datasets.halide.ops.required_regions`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

FORMAT = "optgym-halide-pipeline-v0"
MAX_STAGE_DIMS = 3
MAX_INPUT_DIMS = 4
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _check_name(kind: str, name: object) -> None:
    if not isinstance(name, str) or not _IDENT.match(name):
        raise ValueError(f"{kind} name {name!r} is not a valid C identifier")


def _check_shape(kind: str, name: str, shape: tuple, max_dims: int) -> None:
    if not 1 <= len(shape) <= max_dims:
        raise ValueError(f"{kind} {name!r} has {len(shape)} dims; allowed: 1 to {max_dims}")
    for e in shape:
        if isinstance(e, bool) or not isinstance(e, int) or e < 1:
            raise ValueError(f"{kind} {name!r} has a bad extent {e!r} in shape {shape}")


@dataclass(frozen=True)
class InputTensor:
    """A float32 input buffer; ``shape`` is nominal (the required region may be larger)."""

    name: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Stage:
    """One operator applied to named inputs (input tensors or earlier stages): one Func."""

    name: str
    op: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]
    params: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        # Canonical parameter order, so that equal stages compare and serialize equal.
        object.__setattr__(self, "params", tuple(sorted(tuple(p) for p in self.params)))

    def param(self, key: str) -> int:
        """The integer parameter ``key``; ``KeyError`` if the stage has none of that name."""
        for k, v in self.params:
            if k == key:
                return v
        raise KeyError(f"stage {self.name!r} ({self.op}) has no parameter {key!r}")


@dataclass(frozen=True)
class PipelineSpec:
    """A pipeline: inputs, stages in topological order (the last one is the output), and the
    seed of the input data. Construction validates everything (``ValueError`` if bad)."""

    name: str
    inputs: tuple[InputTensor, ...]
    stages: tuple[Stage, ...]
    seed: int

    def __post_init__(self) -> None:
        self._validate()

    # ------------------------------------------------------------------ queries

    @property
    def output(self) -> Stage:
        """The last stage, whose Func is the pipeline's output."""
        return self.stages[-1]

    def stage(self, name: str) -> Stage:
        """The stage called ``name``; ``KeyError`` if none."""
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(f"no stage {name!r} in pipeline {self.name!r}")

    def input(self, name: str) -> InputTensor:
        """The input tensor called ``name``; ``KeyError`` if none."""
        for t in self.inputs:
            if t.name == name:
                return t
        raise KeyError(f"no input {name!r} in pipeline {self.name!r}")

    def shape_of(self, name: str) -> tuple[int, ...]:
        """The (nominal) shape of an input tensor or a stage."""
        for s in self.stages:
            if s.name == name:
                return s.shape
        return self.input(name).shape

    def consumers(self, name: str) -> list[str]:
        """Names of the stages that read ``name`` (an input or a stage), in stage order."""
        return [s.name for s in self.stages if name in s.inputs]

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (lists for tuples, ``[key, value]`` pairs for params)."""
        return {
            "format": FORMAT,
            "name": self.name,
            "seed": self.seed,
            "inputs": [{"name": t.name, "shape": list(t.shape)} for t in self.inputs],
            "stages": [
                {
                    "name": s.name,
                    "op": s.op,
                    "inputs": list(s.inputs),
                    "shape": list(s.shape),
                    "params": [[k, v] for k, v in s.params],
                }
                for s in self.stages
            ],
        }

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no spaces, one trailing newline; stable across runs."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")) + "\n"

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> PipelineSpec:
        """Inverse of :meth:`to_dict`; ``ValueError`` on any malformed or invalid content."""
        if not isinstance(obj, dict):
            raise ValueError(f"a pipeline spec must be a JSON object, got {type(obj).__name__}")
        if obj.get("format") != FORMAT:
            raise ValueError(f"pipeline spec format {obj.get('format')!r}; expected {FORMAT!r}")
        if not isinstance(obj.get("inputs"), list) or not isinstance(obj.get("stages"), list):
            raise ValueError("malformed pipeline spec: 'inputs' and 'stages' must be lists")
        try:
            inputs = tuple(
                InputTensor(name=t["name"], shape=tuple(t["shape"])) for t in obj["inputs"]
            )
            stages = tuple(
                Stage(
                    name=s["name"],
                    op=s["op"],
                    inputs=tuple(s["inputs"]),
                    shape=tuple(s["shape"]),
                    params=tuple((p[0], p[1]) for p in s.get("params", [])),
                )
                for s in obj["stages"]
            )
            return cls(name=obj["name"], inputs=inputs, stages=stages, seed=obj["seed"])
        except (KeyError, TypeError, IndexError) as e:
            raise ValueError(f"malformed pipeline spec: {type(e).__name__}: {e}") from None

    @classmethod
    def from_json(cls, text: str | bytes) -> PipelineSpec:
        """Parse and validate a spec written by :meth:`to_json`."""
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"pipeline spec is not valid JSON: {e}") from None
        return cls.from_dict(obj)

    # ------------------------------------------------------------------ validation

    def _validate(self) -> None:
        from optgym.datasets.halide.ops import OPS

        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"pipeline name must be a non-empty string, got {self.name!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"pipeline seed must be a non-negative integer, got {self.seed!r}")
        if not self.stages:
            raise ValueError(f"pipeline {self.name!r} has no stages")
        defined: set[str] = set()
        for t in self.inputs:
            _check_name("input", t.name)
            if t.name in defined:
                raise ValueError(f"input name {t.name!r} is used twice")
            _check_shape("input", t.name, t.shape, MAX_INPUT_DIMS)
            defined.add(t.name)
        stage_names = {s.name for s in self.stages}
        for s in self.stages:
            _check_name("stage", s.name)
            if s.name in defined:
                raise ValueError(f"stage name {s.name!r} is used twice (or is an input's name)")
            if s.op not in OPS:
                raise ValueError(
                    f"stage {s.name!r} has unknown op {s.op!r}; known: {', '.join(sorted(OPS))}"
                )
            _check_shape("stage", s.name, s.shape, MAX_STAGE_DIMS)
            if len(set(s.inputs)) != len(s.inputs):
                raise ValueError(f"stage {s.name!r} reads the same tensor twice: {s.inputs}")
            for i in s.inputs:
                if i in defined:
                    continue
                if i == s.name or i in stage_names:
                    raise ValueError(
                        f"stage {s.name!r} reads {i!r}, which is not defined before it: stages "
                        "must be in topological order and the graph must have no cycle"
                    )
                raise ValueError(f"stage {s.name!r} reads unknown input {i!r}")
            keys = [k for k, _ in s.params]
            for k, v in s.params:
                if not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, int):
                    raise ValueError(f"stage {s.name!r} has a bad parameter {(k, v)!r}")
            if len(set(keys)) != len(keys):
                raise ValueError(f"stage {s.name!r} repeats a parameter: {keys}")
            OPS[s.op].check(self, s)
            defined.add(s.name)
        used = {i for s in self.stages for i in s.inputs}
        for t in self.inputs:
            if t.name not in used:
                raise ValueError(f"input {t.name!r} is read by no stage")
        for s in self.stages[:-1]:
            if s.name not in used:
                raise ValueError(f"stage {s.name!r} is read by no stage and is not the output")
