"""Load an experiment file and report every problem as `file:line: field.path: problem`."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from chaos.errors import SpecError
from chaos.experiment.models import Experiment
from chaos.experiment.topology import available_targets
from faults.catalog import FAULT_KINDS
from faults.nemesis import generate
from faults.targets import suggest


def load_experiment(path: str | Path) -> Experiment:
    """Parse and validate; raises SpecError (exit 2) listing every problem found."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise SpecError(str(path), [f"cannot read the file: {e.strerror or e}"]) from None
    return parse_experiment(text, str(path))


def parse_experiment(text: str, source: str) -> Experiment:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise SpecError(source, [f"{where}invalid YAML: {problem}"]) from None
    if not isinstance(data, dict):
        raise SpecError(source, ["the file must hold a mapping with at least `name`, `seed` and `workload`"])
    try:
        experiment = Experiment.model_validate(data)
    except ValidationError as e:
        raise SpecError(source, [_describe(err, node) for err in e.errors()]) from None
    return expand_nemesis(experiment)


def expand_nemesis(experiment: Experiment) -> Experiment:
    """The experiment with its nemesis drawn into plain `faults`. The same seed always draws the same
    schedule, so the expanded faults are the experiment, and `resolved.json` records them as such."""
    if experiment.nemesis is None:
        return experiment
    drawn = generate(experiment.nemesis, experiment.seed, *available_targets(experiment.pipeline))
    return experiment.model_copy(update={"faults": [*experiment.faults, *drawn], "nemesis": None})


def _describe(err: Any, root: yaml.Node | None) -> str:
    """One error, with the field path in the user's terms (no union tags) and a line number."""
    field_path, keys = _user_path(tuple(err["loc"]))
    line = _line_of(root, keys)
    prefix = f"line {line}: " if line else ""
    if err["type"] == "extra_forbidden":
        allowed = _fields_at(keys[:-1])
        suggestion = suggest(str(keys[-1]), allowed) or f"; allowed here: {', '.join(allowed)}"
        return f"{prefix}{field_path}: unknown key{suggestion}"
    message = err["msg"]
    for noise in ("Value error, ", "Assertion failed, "):
        message = message.replace(noise, "")
    if err["type"] == "union_tag_invalid":
        kind = str(err["input"].get("kind"))
        message = f"unknown fault kind {kind!r}; kinds: {', '.join(FAULT_KINDS)}{suggest(kind, FAULT_KINDS)}"
    elif err["type"] == "union_tag_not_found":
        message = f"missing `kind` (one of {', '.join(FAULT_KINDS)})"
    return f"{prefix}{field_path or '(top level)'}: {message}"


def _user_path(loc: tuple[Any, ...]) -> tuple[str, list[Any]]:
    """Drop pydantic's union tags (e.g. `latency` in faults.0.latency.jitter_ms) from a location."""
    keys: list[Any] = []
    model: Any = Experiment
    for part in loc:
        if isinstance(part, int):
            keys.append(part)
            model = _item_type(model)
            continue
        union = _union_members(model)
        if union and part in union:
            model = union[part]
            continue
        keys.append(part)
        model = _field_type(model, part)
    text = ""
    for key in keys:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else str(key))
    return text, keys


def _fields_at(keys: list[Any]) -> list[str]:
    model: Any = Experiment
    for key in keys:
        model = _item_type(model) if isinstance(key, int) else _field_type(model, key)
    if _union_members(model):
        return sorted({f for m in _union_members(model).values() for f in m.model_fields})
    return list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []


def _strip(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1:
        return _strip(args[0])
    return tp


def _field_type(model: Any, name: Any) -> Any:
    if isinstance(model, type) and issubclass(model, BaseModel) and name in model.model_fields:
        return _strip(model.model_fields[name].annotation)
    return None


def _item_type(tp: Any) -> Any:
    args = typing.get_args(_strip(tp))
    return _strip(args[0]) if args else None


def _union_members(tp: Any) -> dict[str, type[BaseModel]]:
    """The tagged members of a discriminated union of models, by their `kind` literal."""
    members = {}
    for arg in typing.get_args(_strip(tp)):
        arg = _strip(arg)
        if isinstance(arg, type) and issubclass(arg, BaseModel) and "kind" in arg.model_fields:
            for tag in typing.get_args(arg.model_fields["kind"].annotation):
                members[tag] = arg
    return members


def _line_of(node: yaml.Node | None, keys: list[Any]) -> int | None:
    """The 1-based line of the deepest node along `keys` that exists in the document."""
    line = None
    for key in keys:
        if isinstance(node, yaml.MappingNode):
            match = [(k, v) for k, v in node.value if k.value == str(key)]
            if not match:
                break
            key_node, node = match[0]
            line = key_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            break
    return line
