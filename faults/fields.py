"""Building blocks of the experiment's models, shared by the fault catalogue: strict models and durations."""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: object) -> float:
    """Seconds from a number or a string such as `5s`, `500ms`, `2m`."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 5s, 500ms or 2m")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError(f"expected a duration such as 5s, 500ms or 2m, got {value!r}")
    if not math.isfinite(seconds):
        raise ValueError(f"a duration must be a finite number of seconds, got {value!r}")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


def parse_signed_duration(value: object) -> float:
    """Seconds, forward or back: a duration such as `30s`, or one led by a minus sign (`-2m`)."""
    text = value.strip() if isinstance(value, str) else value
    behind = (isinstance(text, str) and text.startswith("-")) or (
        isinstance(text, (int, float)) and not isinstance(text, bool) and text < 0)
    try:
        seconds = parse_duration(text[1:] if isinstance(text, str) and behind else abs(text) if behind else text)
    except ValueError:
        raise ValueError(f"expected a duration such as 30s, or -2m to go back, got {value!r}") from None
    return -seconds if behind else seconds


SignedDuration = Annotated[float, BeforeValidator(parse_signed_duration)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
