"""Does a spec produce exactly a model's input schema? Every missing, mistyped or unused column named."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from protos.rtscore.v1 import frame_pb2
from rtscore.errors import FailedPrecondition

_DOUBLE = frame_pb2.COLUMN_TYPE_DOUBLE


class SchemaMismatch(FailedPrecondition):
    """The spec's features are not the model's inputs."""


def schema_problems(features: Sequence[str], inputs: Sequence[frame_pb2.FieldSpec]) -> list[str]:
    """One sentence per problem; empty when the spec's columns are exactly the model's inputs."""
    produced = set(features)
    wanted = {field.name for field in inputs}
    problems = []
    for field in inputs:
        if field.name not in produced:
            problems.append(f"missing: the model reads {field.name!r}, which the spec does not produce")
        elif field.type != _DOUBLE or len(field.shape) > 0:
            kind = frame_pb2.ColumnType.Name(field.type).removeprefix("COLUMN_TYPE_").lower()
            shape = f" of shape {list(field.shape)}" if field.shape else ""
            problems.append(
                f"mistyped: {field.name!r} is {kind}{shape} in the model; the spec produces double"
            )
    for name in features:
        if name not in wanted:
            problems.append(f"unused: the spec produces {name!r}, which the model does not read")
    return problems


def bundle_inputs(path: str | Path) -> list[frame_pb2.FieldSpec]:
    """A bundle's input schema as wire field specs."""
    from scorer.bundle import load_bundle
    from scorer.service.frames import field_spec

    return [field_spec(f) for f in load_bundle(path).input_schema]


def require_match(features: Sequence[str], inputs: Sequence[frame_pb2.FieldSpec], model: str) -> None:
    """SchemaMismatch naming every problem, unless the spec fits `model` exactly."""
    problems = schema_problems(features, inputs)
    if problems:
        raise SchemaMismatch(f"the spec does not fit {model}'s inputs: " + "; ".join(problems))
