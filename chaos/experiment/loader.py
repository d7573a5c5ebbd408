"""Load an experiment file and report every problem as `file:line: field.path: problem`."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from chaos.errors import SpecError
from chaos.experiment.consistency import describe, inconsistencies
from chaos.experiment.models import ExpectSpec, Experiment, PipelineSpec, WorkloadSpec
from chaos.experiment.topology import available_targets
from faults.catalog import FAULT_KINDS, Fault
from faults.nemesis import generate
from faults.targets import suggest

FAULT: TypeAdapter[Any] = TypeAdapter(Fault)
MAX_BYTES = 1 << 20
"""An experiment is a page of YAML: a megabyte is far beyond any real one, and bounds the parse."""
MAX_VALUES = 100_000
"""Anchors and aliases can make a small file expand to billions of values; none of ours needs more."""
MAX_DEPTH = 32
"""Nesting deeper than any experiment's (four levels): refused before the parser recurses into it."""
_OPENS = (yaml.BlockMappingStartToken, yaml.BlockSequenceStartToken, yaml.FlowMappingStartToken,
          yaml.FlowSequenceStartToken)
_CLOSES = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)


def load_experiment(path: str | Path, *, draw_nemesis: bool = True) -> Experiment:
    """Parse and validate; raises SpecError (exit 2) listing every problem found. `draw_nemesis`:
    draw its nemesis into plain faults (a run), or keep the block (`chaos explore` draws it anew)."""
    path = Path(path)
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_BYTES + 1)
    except OSError as e:
        raise SpecError(str(path), [f"cannot read the file: {e.strerror or e}"]) from None
    if len(raw) > MAX_BYTES:
        raise SpecError(str(path), [f"the file is over {MAX_BYTES // 1024} KiB; an experiment is far smaller"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise SpecError(str(path), [f"line {line}: the file is not UTF-8 text (byte 0x{raw[e.start]:02x} "
                                    f"at offset {e.start})"]) from None
    return parse_experiment(text, str(path), draw_nemesis=draw_nemesis)


def parse_experiment(text: str, source: str, *, draw_nemesis: bool = True) -> Experiment:
    try:
        _refuse_deep_nesting(text, source)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        _refuse_expansion(node, source)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise SpecError(source, [f"{where}invalid YAML: {problem}"]) from None
    if not isinstance(data, dict):
        raise SpecError(source, ["the file must hold a mapping with at least `name`, `seed` and `workload`"])
    problems: list[tuple[int | None, str]] = []
    experiment = None
    try:
        experiment = Experiment.model_validate(data, context={"consistency_checked_by_caller": True})
    except ValidationError as e:
        problems += [_describe(err, node) for err in e.errors()]
    pipeline, workload, faults, expect = _sections(experiment, data)
    for where, message in inconsistencies(pipeline, workload, faults, expect):
        problems.append((_line_of(node, list(where)), f"{describe(where)}: {message}"))
    if problems:  # every problem at once, in the order of the file
        ordered = sorted(problems, key=lambda p: (p[0] is None, p[0] or 0))
        raise SpecError(source, [f"line {line}: {text}" if line else text for line, text in ordered])
    assert experiment is not None
    return expand_nemesis(experiment) if draw_nemesis else experiment


def _refuse_deep_nesting(text: str, source: str) -> None:
    """PyYAML builds nested collections recursively: a document nested a few thousand levels deep
    would end in a RecursionError. Its scanner is iterative, so the depth is measured on the tokens."""
    depth = 0
    for token in yaml.scan(text, Loader=yaml.SafeLoader):
        if isinstance(token, _OPENS):
            depth += 1
            if depth > MAX_DEPTH:
                line = token.start_mark.line + 1
                raise SpecError(source, [f"line {line}: nested more than {MAX_DEPTH} levels deep; "
                                         "an experiment needs at most a few"])
        elif isinstance(token, _CLOSES):
            depth -= 1


def _refuse_expansion(root: yaml.Node | None, source: str) -> None:
    """Count the values the document expands to, an alias counting once more each time it is used."""
    stack, values = [root], 0
    while stack:
        node = stack.pop()
        values += 1
        if values > MAX_VALUES:
            raise SpecError(source, [f"the document expands to more than {MAX_VALUES} values "
                                     "(through anchors and aliases); an experiment is far smaller"])
        if isinstance(node, yaml.SequenceNode):
            stack += node.value
        elif isinstance(node, yaml.MappingNode):
            stack += [part for pair in node.value for part in pair]


def _sections(experiment: Experiment | None,
              data: dict[str, Any]) -> tuple[Any, Any, list[tuple[int, Fault]], Any]:
    """The pipeline, the workload, the faults and the expectations, each where it is valid on its own:
    the cross-section checks run on those even when other fields are wrong."""
    if experiment is not None:
        return experiment.pipeline, experiment.workload, list(enumerate(experiment.faults)), experiment.expect

    def valid(validate: Any, value: Any) -> Any:
        try:
            return validate(value)
        except (ValidationError, TypeError, ValueError):
            return None

    faults = data.get("faults") if isinstance(data.get("faults"), list) else []
    checked = [(i, valid(FAULT.validate_python, f)) for i, f in enumerate(faults)]
    return (valid(PipelineSpec.model_validate, data.get("pipeline") or {}),
            valid(WorkloadSpec.model_validate, data.get("workload")),
            [(i, f) for i, f in checked if f is not None],
            valid(ExpectSpec.model_validate, data.get("expect") or {}))


def dump_experiment(experiment: Experiment) -> str:
    """An experiment as YAML that `load_experiment` reads back as the same experiment."""
    return yaml.safe_dump(experiment.model_dump(mode="json", exclude_none=True), sort_keys=False)


def expand_nemesis(experiment: Experiment) -> Experiment:
    """The experiment with its nemesis drawn into plain `faults`. The same seed always draws the same
    schedule, so the expanded faults are the experiment, and `resolved.json` records them as such."""
    if experiment.nemesis is None:
        return experiment
    drawn = generate(experiment.nemesis, experiment.seed,
                     *available_targets(experiment.pipeline, experiment.environment.shape))
    return experiment.model_copy(update={"faults": [*experiment.faults, *drawn], "nemesis": None})


def _describe(err: Any, root: yaml.Node | None) -> tuple[int | None, str]:
    """One error, with the field path in the user's terms (no union tags) and its line number."""
    field_path, keys, parent = _user_path(tuple(err["loc"]))
    line = _line_of(root, keys)
    if err["type"] == "extra_forbidden":
        return line, f"{field_path}: {_unknown_key(str(keys[-1]), parent, keys[:-1])}"
    message = err["msg"]
    for noise in ("Value error, ", "Assertion failed, "):
        message = message.replace(noise, "")
    if err["type"] == "union_tag_invalid":
        kind = str(err["input"].get("kind"))
        message = f"unknown fault kind {kind!r}; kinds: {', '.join(FAULT_KINDS)}{suggest(kind, FAULT_KINDS)}"
    elif err["type"] == "union_tag_not_found":
        message = f"missing `kind` (one of {', '.join(FAULT_KINDS)})"
    return line, f"{field_path or '(top level)'}: {message}"


def _unknown_key(key: str, parent: Any, keys: list[Any]) -> str:
    """What to say of a key the model at its place does not have: a close match among the keys it
    does have, or, for a fault, which kinds of fault do have that key."""
    is_model = isinstance(parent, type) and issubclass(parent, BaseModel)
    allowed = list(parent.model_fields) if is_model else _fields_at(keys)
    members = _union_members(Fault)
    kind = next((k for k, model in members.items() if model is parent), None)
    owners = sorted(k for k, model in members.items() if key in model.model_fields)
    if kind is not None and owners:
        return (f"a `{kind}` fault has no `{key}` (only {', '.join(f'`{o}`' for o in owners)} faults do); "
                f"its keys: {', '.join(allowed)}")
    return "unknown key" + (suggest(key, allowed) or f"; allowed here: {', '.join(allowed)}")


def _user_path(loc: tuple[Any, ...]) -> tuple[str, list[Any], Any]:
    """Drop pydantic's union tags (e.g. `latency` in faults.0.latency.jitter_ms) from a location;
    also the model that holds the last key (a union member where the tag chose one)."""
    keys: list[Any] = []
    model: Any = Experiment
    parent: Any = None
    for part in loc:
        parent = model
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
    return describe(tuple(keys)), keys, parent


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
