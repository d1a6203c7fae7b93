"""Pipelines as pure data: input tensors and a topologically ordered list of operator stages.

Shapes are in Halide order: ``x`` (fastest, contiguous) first, then ``y``, then ``c``; a
numpy array of the same tensor has the reversed shape. Every stage is one Halide Func defined
over an infinite domain; ``shape`` is the extent the stage nominally has (the output's is the
region realized), while the input buffers cover whatever bounds inference requires (see
:func:`optgym.datasets.schedule.ops.required_regions`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from optgym.datasets.files import check_json_depth

FORMAT = "optgym-halide-pipeline-v0"
MAX_STAGE_DIMS = 3
MAX_INPUT_DIMS = 4
# Limits on what a spec may ask for, so that a hostile file (a ``file://`` benchmark) gives a
# clear error instead of a RecursionError or gigabytes allocated by the reference and Halide.
# The largest shipped pipeline is far inside each: 12 KB, 30 stages, 2048-wide, 4e8 work.
MAX_SPEC_BYTES = 1 << 20
MAX_JSON_DEPTH = 8  # a spec nests 5 deep (object, stages, stage, params, pair)
MAX_STAGES = 64
MAX_INPUTS = 64
MAX_NAME_CHARS = 64
MAX_EXTENT = 1 << 16
MAX_TENSOR_ELEMENTS = 1 << 25  # 128 MiB of float32 per tensor
MAX_TOTAL_ELEMENTS = 1 << 26  # 256 MiB of float32 over every input and stage
MAX_NAIVE_WORK = 1.0e10  # ``naive_work`` units: about 10 s for the naive schedule
MAX_PARAM = MAX_EXTENT
MAX_SEED = 2**63 - 1
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PIPELINE_NAME = re.compile(r"^[A-Za-z0-9_./-]+$")
_FIELDS = ("format", "inputs", "name", "seed", "stages")
_INPUT_FIELDS = ("name", "shape")
_STAGE_FIELDS = ("inputs", "name", "op", "params", "shape")
# Strings (with their escapes) and the brackets that nest, for the depth check before parsing.


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_name(kind: str, name: object) -> None:
    # The bad value is not shown: it comes from a file, and a message never echoes a file.
    if not isinstance(name, str) or len(name) > MAX_NAME_CHARS or not _IDENT.match(name):
        raise ValueError(
            f"{kind} must be a C identifier (letters, digits, '_'; not starting with a "
            f"digit) of at most {MAX_NAME_CHARS} characters"
        )


def _check_shape(kind: str, name: str, shape: tuple, max_dims: int) -> None:
    if not 1 <= len(shape) <= max_dims:
        raise ValueError(f"{kind} {name!r} has {len(shape)} dims; allowed: 1 to {max_dims}")
    for d, e in enumerate(shape):
        if not _is_int(e) or not 1 <= e <= MAX_EXTENT:
            raise ValueError(
                f"{kind} {name!r} shape[{d}] must be an integer extent in [1, {MAX_EXTENT}]"
            )
    if math.prod(shape) > MAX_TENSOR_ELEMENTS:
        raise ValueError(
            f"{kind} {name!r} has {math.prod(shape)} elements; the limit is "
            f"{MAX_TENSOR_ELEMENTS} per tensor"
        )


def _list(value: object, where: str, limit: int) -> list:
    if not isinstance(value, list):
        raise ValueError(f"{where} must be a JSON list, got {_kind(value)}")
    if len(value) > limit:
        raise ValueError(f"{where} has {len(value)} entries; the limit is {limit}")
    return value


def _object(value: object, where: str, fields: tuple[str, ...], optional: tuple = ()) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be a JSON object, got {_kind(value)}")
    for key in fields:
        if key not in value and key not in optional:
            raise ValueError(f"{where} has no {key!r} field")
    extra = sum(1 for key in value if key not in fields)
    if extra:
        raise ValueError(f"{where} has {extra} unknown field(s); allowed: {', '.join(fields)}")
    return value


#: JSON kinds by Python type, in the order they are tried (bool before its base class int).
_KINDS: tuple[tuple[type, str], ...] = (
    (type(None), "null"),
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a number"),
    (str, "a string"),
    (list, "a list"),
    (dict, "an object"),
)


def _kind(value: object) -> str:
    """The JSON kind of a value, for messages that must not show the value itself."""
    return next((kind for t, kind in _KINDS if isinstance(value, t)), type(value).__name__)


def _shape(value: object, where: str, max_dims: int) -> tuple[int, ...]:
    shape = _list(value, where, max_dims)
    if not shape:
        raise ValueError(f"{where} is empty; a shape has 1 to {max_dims} extents")
    for d, e in enumerate(shape):
        if not _is_int(e) or not 1 <= e <= MAX_EXTENT:
            raise ValueError(
                f"{where}[{d}] must be an integer extent in [1, {MAX_EXTENT}], got {_kind(e)}"
                + (" out of range" if _is_int(e) else "")
            )
    return tuple(shape)


def _name(value: object, where: str) -> str:
    _check_name(where, value)
    assert isinstance(value, str)
    return value


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
        """Inverse of :meth:`to_dict`; ``ValueError`` naming the first malformed or invalid
        field (never showing its content) and what is allowed."""
        obj = _object(obj, "pipeline spec", _FIELDS)
        if obj["format"] != FORMAT:
            raise ValueError(f"pipeline spec field 'format' must be {FORMAT!r}")
        name = obj["name"]
        if not isinstance(name, str) or not _PIPELINE_NAME.match(name) or len(name) > 128:
            raise ValueError(
                "pipeline spec field 'name' must be 1 to 128 characters among letters, digits "
                "and '_./-'"
            )
        seed = obj["seed"]
        if not _is_int(seed) or not 0 <= seed <= MAX_SEED:
            raise ValueError(
                f"pipeline spec field 'seed' must be an integer in [0, {MAX_SEED}], "
                f"got {_kind(seed)}" + (" out of range" if _is_int(seed) else "")
            )
        inputs = []
        for i, t in enumerate(_list(obj["inputs"], "pipeline spec field 'inputs'", MAX_INPUTS)):
            where = f"inputs[{i}]"
            t = _object(t, where, _INPUT_FIELDS)
            inputs.append(
                InputTensor(
                    _name(t["name"], f"{where}.name"),
                    _shape(t["shape"], f"{where}.shape", MAX_INPUT_DIMS),
                )
            )
        stages = []
        for i, st in enumerate(_list(obj["stages"], "pipeline spec field 'stages'", MAX_STAGES)):
            where = f"stages[{i}]"
            st = _object(st, where, _STAGE_FIELDS, optional=("params",))
            if not isinstance(st["op"], str):
                raise ValueError(f"{where}.op must be an operator name, got {_kind(st['op'])}")
            reads = _list(st["inputs"], f"{where}.inputs", MAX_INPUTS + MAX_STAGES)
            params = []
            for j, pair in enumerate(_list(st.get("params", []), f"{where}.params", 16)):
                if not isinstance(pair, list) or len(pair) != 2:
                    raise ValueError(f"{where}.params[{j}] must be a [name, integer] pair")
                key = _name(pair[0], f"{where}.params[{j}][0]")
                if not _is_int(pair[1]) or not 1 <= pair[1] <= MAX_PARAM:
                    raise ValueError(
                        f"{where}.params[{j}][1] must be an integer in [1, {MAX_PARAM}], "
                        f"got {_kind(pair[1])}" + (" out of range" if _is_int(pair[1]) else "")
                    )
                params.append((key, pair[1]))
            stages.append(
                Stage(
                    name=_name(st["name"], f"{where}.name"),
                    op=st["op"],
                    inputs=tuple(_name(r, f"{where}.inputs[{j}]") for j, r in enumerate(reads)),
                    shape=_shape(st["shape"], f"{where}.shape", MAX_STAGE_DIMS),
                    params=tuple(params),
                )
            )
        return cls(name=name, inputs=tuple(inputs), stages=tuple(stages), seed=seed)

    @classmethod
    def from_json(cls, text: str | bytes, what: str = "pipeline spec") -> PipelineSpec:
        """Parse and validate a spec written by :meth:`to_json` (``what`` names it in
        errors: the file's path, say); ``ValueError`` past :data:`MAX_SPEC_BYTES` or
        :data:`MAX_JSON_DEPTH`, or for any malformed field."""
        data = text.encode() if isinstance(text, str) else bytes(text)
        if len(data) > MAX_SPEC_BYTES:
            raise ValueError(
                f"{what} is {len(data)} bytes; the limit for a pipeline spec is {MAX_SPEC_BYTES}"
            )
        check_json_depth(data, what, MAX_JSON_DEPTH)
        try:
            obj = json.loads(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise ValueError(f"{what} is not UTF-8 text (a pipeline spec is JSON)") from None
        except json.JSONDecodeError as e:  # its message has a position, never the text
            raise ValueError(f"{what} is not valid JSON: {e.msg} at line {e.lineno}") from None
        except (ValueError, RecursionError):  # e.g. an integer of more than 4300 digits
            raise ValueError(f"{what} holds a JSON value too large to read") from None
        return cls.from_dict(obj)

    # ------------------------------------------------------------------ validation

    def _validate(self) -> None:
        from optgym.datasets.schedule.ops import OPS

        if (
            not isinstance(self.name, str)
            or not _PIPELINE_NAME.match(self.name)
            or len(self.name) > 128
        ):
            raise ValueError(
                "a pipeline name must be 1 to 128 characters among letters, digits and '_./-'"
            )
        if not _is_int(self.seed) or not 0 <= self.seed <= MAX_SEED:
            raise ValueError(f"a pipeline seed must be an integer in [0, {MAX_SEED}]")
        if not self.stages:
            raise ValueError(f"pipeline {self.name!r} has no stages")
        if len(self.stages) > MAX_STAGES or len(self.inputs) > MAX_INPUTS:
            raise ValueError(
                f"pipeline {self.name!r} has {len(self.stages)} stages and {len(self.inputs)} "
                f"inputs; the limits are {MAX_STAGES} and {MAX_INPUTS}"
            )
        for t in (*self.inputs, *self.stages):
            _check_name("an input name" if isinstance(t, InputTensor) else "a stage name", t.name)
        for s in self.stages:
            for i in s.inputs:
                _check_name(f"each input that stage {s.name!r} reads", i)
        defined: set[str] = set()
        for t in self.inputs:
            if t.name in defined:
                raise ValueError(f"input name {t.name!r} is used twice")
            _check_shape("input", t.name, t.shape, MAX_INPUT_DIMS)
            defined.add(t.name)
        stage_names = {s.name for s in self.stages}
        for s in self.stages:
            if s.name in defined:
                raise ValueError(f"stage name {s.name!r} is used twice (or is an input's name)")
            if s.op not in OPS:  # the op is not shown: it may be any text from a file
                raise ValueError(
                    f"stage {s.name!r} has an unknown op; known: {', '.join(sorted(OPS))}"
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
                if not isinstance(k, str) or not _IDENT.match(k) or len(k) > MAX_NAME_CHARS:
                    raise ValueError(
                        f"stage {s.name!r} has a parameter whose name is no identifier"
                    )
                if not _is_int(v) or not 1 <= v <= MAX_PARAM:
                    raise ValueError(
                        f"stage {s.name!r} parameter {k!r} must be an integer in [1, {MAX_PARAM}]"
                    )
            if len(set(keys)) != len(keys):
                raise ValueError(f"stage {s.name!r} repeats a parameter: {keys}")
            OPS[s.op].check(self, s)
            defined.add(s.name)
        total = sum(math.prod(t.shape) for t in (*self.inputs, *self.stages))
        if total > MAX_TOTAL_ELEMENTS:
            raise ValueError(
                f"pipeline {self.name!r} holds {total} tensor elements over its inputs and "
                f"stages; the limit is {MAX_TOTAL_ELEMENTS}"
            )
        used = {i for s in self.stages for i in s.inputs}
        for t in self.inputs:
            if t.name not in used:
                raise ValueError(f"input {t.name!r} is read by no stage")
        for s in self.stages[:-1]:
            if s.name not in used:
                raise ValueError(f"stage {s.name!r} is read by no stage and is not the output")
        from optgym.datasets.schedule.ops import naive_work

        work = naive_work(self)
        if work > MAX_NAIVE_WORK:
            raise ValueError(
                f"pipeline {self.name!r} needs about {work:.3g} operations for the naive "
                f"schedule; the limit is {MAX_NAIVE_WORK:.3g}"
            )
