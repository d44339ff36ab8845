"""Command-line overrides of a spec: ``key.path=value`` applied to the YAML before validation.

``cellgi train SPEC model.hidden_dim=128 data.graphs.0.path=mine.txt training.trainer.devices=2``

- The key is a dotted path into the spec; an integer segment indexes a list (``data.graphs.0.path``);
  the index one past the end appends a new item (``data.graphs.2={name: x, format: edgelist, path: y}``).
- The value is read as YAML (``8`` int, ``1e-3`` float, ``true``, ``null``, ``[0, 1]``, ``{type: gate}``,
  anything else a string). ``key=`` with no value is refused (write ``key=null`` to clear a value).
- A key the file does not have is created; the schema then decides whether it is allowed there, as for
  a key written in the file (an unknown key is an error with a did-you-mean).
- ``~key.path`` removes a key (its default applies again), e.g. the params of a component whose
  ``type`` another override changes: ``model.conv.type=masked_gatv2 ~model.conv.num_mlp_layers``.
- A relative ``data.root`` given as an override is taken from the current directory (not from the
  spec file's folder, which is where a ``data.root`` written in the file is taken from).

Problems are reported like file errors, but located at the argument::

    override 2 (model.hiden_dim=8): model.hiden_dim: unknown key (not allowed here); did you mean 'hidden_dim'?
"""

from __future__ import annotations

import copy
import difflib
import types
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Sequence, Union, get_args, get_origin

import yaml
from pydantic import BaseModel

from cellgi.spec.base import ComponentSlot
from cellgi.spec.errors import SpecError, SpecIssue
from cellgi.spec.validation import Spec, SpecCheck, mentioned_types, spec_model, validate_spec
from cellgi.spec.yamlio import Located, SpecSyntaxError, parse_yaml

__all__ = [
    "SpecNote",
    "Override",
    "OverrideIssue",
    "apply_overrides",
    "dump_spec_yaml",
    "parse_override",
    "valid_keys",
    "validate_with_overrides",
]


class SpecNote(UserWarning):
    """Something an override changed beyond its own key (e.g. the parameters a ``type`` change dropped)."""


@dataclass(frozen=True)
class OverrideIssue(SpecIssue):
    """A problem located at a command-line argument instead of a file line."""

    def render(self, snippet: bool = True) -> str:  # noqa: ARG002 - no file line to show
        return f"{self.file}: {self.path + ': ' if self.path else ''}{self.message}"


@dataclass(frozen=True)
class Override:
    """One parsed ``key.path=value`` argument."""

    label: str  # how errors name it: "override 2 (model.hidden_dim=8)" or "--devices 2"
    key: str
    loc: tuple[str | int, ...]
    value: Any
    number: int = 0  # position among the overrides (orders the error list)
    delete: bool = False  # ``~key.path``: remove the key (its default applies again)

    def covers(self, path: str) -> bool:
        """Whether an issue at dotted ``path`` comes from this override."""
        own = ".".join(map(str, self.loc))
        if path == own or path.startswith(own + "."):
            return True
        # changing a component's type makes the params of its mapping invalid or required
        if self.loc and self.loc[-1] == "type":
            parent = ".".join(map(str, self.loc[:-1]))
            return path == parent or path.startswith(parent + ".")
        return False


def _issue(label: str, path: str, message: str, number: int = 0) -> OverrideIssue:
    return OverrideIssue(label, number, path, message)


def parse_override(text: str, number: int | None = None, *, label: str | None = None) -> Override:
    """Parse ``key.path=value``; raises :class:`SpecError` naming the argument."""
    label = label or (f"override {number} ({text})" if number is not None else f"override ({text})")
    if text.startswith("~") and "=" not in text:
        key = text[1:].strip()
        segs = key.split(".")
        if not key or any(not s.strip() for s in segs):
            raise SpecError([_issue(label, "", f"empty key segment in {key!r}")])
        loc = tuple(int(s) if s.isdigit() else s.strip() for s in segs)
        return Override(label, key, loc, None, number or 0, delete=True)
    if "=" not in text:
        raise SpecError([_issue(label, "", "expected KEY.PATH=VALUE, e.g. model.hidden_dim=128")])
    key, raw = text.split("=", 1)
    key = key.strip()
    segs = key.split(".")
    if not key or any(not s.strip() for s in segs):
        raise SpecError([_issue(label, "", f"empty key segment in {key!r} (write a dotted path like training.max_epochs)")])
    if raw.strip() == "":
        raise SpecError([_issue(label, key, "empty value (write KEY=null to clear a value)")])
    try:
        value = parse_yaml(raw, label).data
    except SpecSyntaxError as exc:
        raise SpecError([_issue(label, key, exc.message)]) from None
    loc = tuple(int(s) if s.isdigit() else s.strip() for s in segs)
    return Override(label, key, loc, value, number or 0)


def _delete(data: dict[str, Any], ov: Override) -> None:
    cur: Any = data
    for seg in ov.loc[:-1]:
        try:
            cur = cur[seg]
        except (KeyError, IndexError, TypeError):
            cur = None
            break
    last = ov.loc[-1]
    if isinstance(cur, dict) and last in cur:
        del cur[last]
    elif isinstance(cur, list) and isinstance(last, int) and 0 <= last < len(cur):
        del cur[last]
    else:
        raise SpecError([_issue(ov.label, ov.key, "nothing to remove: the spec has no such key")])


def _retype(cur: dict[str, Any], ov: Override, earlier: Sequence[Override], notes: list[str] | None) -> None:
    """``ov`` changes the ``type`` of the component mapping ``cur``: the old type's parameters go
    (the new type's defaults apply), except those an earlier override of this command set; say so."""
    old = cur.get("type")
    if old is None or old == ov.value:
        return
    parent = ov.loc[:-1]
    keep = {o.loc[len(parent)] for o in earlier if not o.delete and len(o.loc) > len(parent) and o.loc[: len(parent)] == parent}
    dropped = {k: v for k, v in cur.items() if k != "type" and k not in keep}
    for k in dropped:
        del cur[k]
    if notes is not None:
        where = ".".join(map(str, parent))
        if dropped:
            shown = ", ".join(f"{k}={v!r}" if not isinstance(v, (dict, list)) else k for k, v in dropped.items())
            notes.append(f"{ov.label}: {where}: type {old} -> {ov.value}: dropped {old}'s parameters "
                         f"({shown}); {ov.value}'s defaults apply (set any with {where}.KEY=VALUE)")


def _set(data: dict[str, Any], ov: Override, cwd: Path, earlier: Sequence[Override] = (),
         notes: list[str] | None = None) -> None:
    if ov.delete:
        try:
            _delete(data, ov)
        except SpecError:
            # `T.type=new ~T.old_param`: the type change already dropped it (written before cellgi did so)
            if not any(not e.delete and e.loc == ov.loc[:-1] + ("type",) for e in earlier):
                raise
        return
    cur: Any = data
    for depth, seg in enumerate(ov.loc):
        last = depth == len(ov.loc) - 1
        where = ".".join(map(str, ov.loc[:depth])) or "the spec"
        if isinstance(cur, list):
            if not isinstance(seg, int):
                raise SpecError([_issue(ov.label, ov.key, f"{where} is a list: index it with a number (0 .. {len(cur) - 1})")])
            if seg > len(cur):
                raise SpecError([_issue(
                    ov.label, ov.key,
                    f"index {seg} is out of range: {where} has {len(cur)} item(s) (index {len(cur)} appends one)",
                )])
            if seg == len(cur):
                cur.append({} if not last else None)
        elif isinstance(cur, dict):
            if isinstance(seg, int):
                seg = str(seg)
            if seg not in cur or (cur[seg] is None and not last):
                cur[seg] = {} if not last else None
        else:
            kind = type(cur).__name__ if cur is not None else "null"
            raise SpecError([_issue(ov.label, ov.key, f"{where} is a {kind} value, not a mapping or list")])
        if last:
            value = ov.value
            if seg == "type" and isinstance(cur, dict) and isinstance(cur.get("type"), str):
                _retype(cur, ov, earlier, notes)
            if ov.loc == ("data", "root") and isinstance(value, str):
                root = Path(value).expanduser()
                value = str(root if root.is_absolute() else (cwd / root).resolve())
            cur[seg] = value
        else:
            cur = cur[seg]


def apply_overrides(
    data: Any,
    overrides: Sequence[str | Override],
    *,
    cwd: str | Path | None = None,
    collect: list[SpecIssue] | None = None,
    notes: list[str] | None = None,
) -> tuple[dict[str, Any], list[Override]]:
    """A deep copy of the parsed spec ``data`` with every override applied in order.

    Raises :class:`SpecError` with one issue per unusable override (syntax, or a path that runs
    through a scalar or past the end of a list); schema problems are left to validation. With
    ``collect`` (a list), those issues are appended to it instead and the usable overrides applied.

    An override of a component's ``type`` to another type drops the old type's parameters (those an
    earlier override of the same command set are kept); ``notes`` (a list) receives one line saying
    what was dropped.
    """
    if not isinstance(data, dict):
        data = {}
    out = copy.deepcopy(data)
    base = Path(cwd) if cwd is not None else Path.cwd()
    parsed: list[Override] = []
    issues: list[SpecIssue] = []
    for i, ov in enumerate(overrides, start=1):
        try:
            o = ov if isinstance(ov, Override) else parse_override(str(ov), i)
            if o.number != i:
                o = Override(o.label, o.key, o.loc, o.value, i, o.delete)
            _set(out, o, base, parsed, notes)
            parsed.append(o)
        except SpecError as exc:
            issues.extend(OverrideIssue(x.file, i, x.path, x.message) for x in exc.issues)
    if issues and collect is None:
        raise SpecError(issues)
    if collect is not None:
        collect.extend(issues)
    return out, parsed


# ----------------------------------------------------------------------------------- schema walk
def _members(tp: Any) -> list[Any]:
    """The alternatives of a (possibly Annotated / Optional) annotation."""
    origin = get_origin(tp)
    if origin is Annotated:
        return _members(get_args(tp)[0])
    if origin in (Union, types.UnionType):
        return [m for a in get_args(tp) for m in _members(a)]
    return [tp]


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _pick(tp: Any, node: Any) -> Any:
    """The member of ``tp`` that describes ``node`` (a tagged component by its ``type``)."""
    members = [m for m in _members(tp) if m is not type(None)]
    models = [m for m in members if _is_model(m)]
    if isinstance(node, dict) and models:
        tag = node.get("type")
        for m in models:
            f = m.model_fields.get("type")
            if f is not None and get_origin(f.annotation) is Literal and tag in get_args(f.annotation):
                return m
        if len(models) == 1 or tag is None:
            return models[0]
        return None
    if isinstance(node, list):
        for m in members:
            if get_origin(m) in (list, tuple):
                return m
    return members[0] if len(members) == 1 else (models[0] if models else None)


def valid_keys(spec_cls: type[BaseModel], data: Any, loc: Sequence[str | int]) -> list[str] | None:
    """Field names allowed in the mapping at ``loc`` of ``data`` under ``spec_cls`` (None: unknown)."""
    tp: Any = spec_cls
    node: Any = data
    for seg in loc:
        tp = _pick(tp, node)
        if tp is None:
            return None
        if _is_model(tp):
            f = tp.model_fields.get(str(seg))
            if f is None:
                return None
            tp = f.annotation
        elif get_origin(tp) in (list, tuple) and isinstance(seg, int):
            args = get_args(tp)
            tp = args[0] if args else Any
        elif get_origin(tp) is dict:
            args = get_args(tp)
            tp = args[1] if len(args) == 2 else Any
        else:
            return None
        try:
            node = node[seg] if node is not None else None
        except (KeyError, IndexError, TypeError):
            node = None
    tp = _pick(tp, node)
    if tp is not None and _is_model(tp):
        return list(tp.model_fields)
    return None


def _did_you_mean(spec_cls: type[BaseModel], data: Any, path: str) -> str:
    segs: list[str | int] = [int(s) if s.isdigit() else s for s in path.split(".")]
    keys = valid_keys(spec_cls, data, segs[:-1])
    if not keys:
        return ""
    close = difflib.get_close_matches(str(segs[-1]), keys, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{hint} (valid here: {', '.join(keys)})"


def validate_with_overrides(
    located: Located | dict[str, Any],
    overrides: Sequence[str | Override],
    *,
    base_dir: str | Path | None = None,
    cwd: str | Path | None = None,
    notes: list[str] | None = None,
    checks: Sequence[SpecCheck] = (),
) -> Spec:
    """Apply ``overrides`` to a parsed spec (:class:`~cellgi.spec.yamlio.Located` or plain data) and
    validate it; issues caused by an override are reported at that override.

    ``notes``: receives what the overrides changed beyond their own key (the parameters a ``type``
    change dropped); without a list, each note is issued as a :class:`SpecNote` warning. ``checks``: run
    on the validated spec (see :func:`~cellgi.spec.validate_spec`); their issues are placed as any other.
    """
    raw = located.data if isinstance(located, Located) else located
    bad: list[SpecIssue] = []
    said: list[str] = []
    data, parsed = apply_overrides(raw, overrides, cwd=cwd, collect=bad, notes=said)
    if notes is not None:
        notes.extend(said)
    else:
        for line in said:
            warnings.warn(line, SpecNote, stacklevel=3)
    try:
        spec = validate_spec(data, located if isinstance(located, Located) else None, base_dir=base_dir, checks=checks)
    except SpecError as exc:
        issues: list[SpecIssue] = list(bad)
        from_file: set[tuple[str, str]] | None = None  # the issues of the spec without the overrides
        for issue in exc.issues:
            owner = next((o for o in reversed(parsed) if o.covers(issue.path)), None)
            if owner is None and parsed:
                # an issue at a section (a check of several keys, the memory estimate...) that the file
                # alone does not have: the overrides caused it, the one inside that section (or the last)
                if from_file is None:
                    from_file = _issues_without_overrides(raw, located, base_dir, checks)
                if (issue.path, issue.message) not in from_file:
                    inside = [o for o in parsed if o.covers(issue.path) or
                              ".".join(map(str, o.loc)).startswith(issue.path + "." if issue.path else "")]
                    owner = (inside or parsed)[-1]
            if owner is None:
                issues.append(issue)
                continue
            msg = issue.message
            if msg.startswith("unknown key"):
                try:
                    msg += _did_you_mean(spec_model(mentioned_types(data)), data, issue.path)
                except Exception:  # noqa: BLE001 - a hint must never hide the error itself
                    pass
            issues.append(OverrideIssue(owner.label, owner.number, issue.path, msg))
        in_file = [i for i in issues if not isinstance(i, OverrideIssue)]
        at_args = sorted((i for i in issues if isinstance(i, OverrideIssue)), key=lambda i: i.line)
        raise SpecError(in_file + at_args) from None
    if bad:
        raise SpecError(bad)
    return spec


def _issues_without_overrides(raw: Any, located: Located | dict[str, Any], base_dir: str | Path | None,
                              checks: Sequence[SpecCheck] = ()) -> set[tuple[str, str]]:
    """``(path, message)`` of every issue of the spec as the file has it (empty when it validates)."""
    try:
        validate_spec(raw, located if isinstance(located, Located) else None, base_dir=base_dir, checks=checks)
    except SpecError as exc:
        return {(i.path, i.message) for i in exc.issues}
    except Exception:  # noqa: BLE001 - only a comparison: nothing of the file's is known then
        return set()
    return set()


def dump_spec_yaml(spec: Spec) -> str:
    """The fully resolved spec (defaults included) as YAML that validates back to the same spec."""
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False, default_flow_style=False, width=100)


def spec_key_paths(*, components: bool = True) -> list[str]:
    """Every dotted key the spec schema knows (list items as ``.0.``), for shell completion and docs.

    ``components``: include the params of every registered member of a component slot (this imports
    the built-ins, hence torch); without, a slot contributes its ``type`` key only (no torch import).
    """
    out: list[str] = []

    def walk(tp: Any, prefix: str, depth: int) -> None:
        if depth > 6:
            return
        if get_origin(tp) is Annotated:
            slot = next((m for m in get_args(tp)[1:] if isinstance(m, ComponentSlot)), None)
            if slot is not None:
                out.append(prefix + slot.key)
                return
        members = [m for m in _members(tp) if m is not type(None)]
        models = [m for m in members if _is_model(m)]
        if models:
            seen: set[str] = set()
            for m in models:
                for name, f in m.model_fields.items():
                    if name in seen:
                        continue
                    seen.add(name)
                    key = f"{prefix}{name}"
                    out.append(key)
                    slot = next((x for x in f.metadata if isinstance(x, ComponentSlot)), None)
                    if slot is not None:
                        out.append(f"{key}.{slot.key}")
                        continue
                    walk(f.annotation, key + ".", depth + 1)
            return
        for m in members:
            if get_origin(m) is list:
                args = get_args(m)
                if args and any(_is_model(a) for a in _members(args[0])):
                    walk(args[0], prefix + "0.", depth + 1)

    walk(spec_model() if components else Spec, "", 0)
    return sorted(set(out))
