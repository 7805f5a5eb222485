"""Settings built from command-line values: a bad value is one line naming the field, not a traceback."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from rtscore.errors import InvalidArgument

S = TypeVar("S", bound=BaseModel)


def settings_from(cls: type[S], **given: Any) -> S:
    """`cls(**given)`; raises InvalidArgument `bad settings: field: problem; …` when a value is refused."""
    try:
        return cls(**given)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '(settings)'}: {e['msg'].removeprefix('Value error, ')}"
            for e in err.errors()
        )
        raise InvalidArgument(f"bad settings: {problems}") from None
