"""Turning pydantic errors into ``FILE:LINE: dotted.path: message`` lines."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from cellgi.errors import CellgiError
from cellgi.registry import ROLES, get_registry
from cellgi.spec.yamlio import Located

__all__ = ["SpecError", "SpecIssue", "issues_from_validation"]


@dataclass(frozen=True)
class SpecIssue:
    file: str
    line: int
    path: str
    message: str
    snippet: str = ""

    def render(self, snippet: bool = True) -> str:
        head = f"{self.file}:{self.line}: {self.path + ': ' if self.path else ''}{self.message}"
        return head + ("\n" + self.snippet if snippet and self.snippet else "")


class SpecError(CellgiError):
    """One or more problems with a spec; ``str()`` is the rendered list."""

    exit_code = 2

    def __init__(self, issues: list[SpecIssue]):
        self.issues = issues
        super().__init__(self.render(snippet=False))

    def render(self, snippet: bool = True) -> str:
        return "\n".join(i.render(snippet) for i in self.issues)


def _clean_loc(loc: tuple, data: Any) -> tuple[tuple, bool]:
    """Drop pydantic's internal segments (union tags, validator names); say if the path exists."""
    out: list[Any] = []
    cur = data
    exists = True
    for seg in loc:
        if isinstance(seg, str) and ("[" in seg or seg.startswith("function-")):
            continue
        if isinstance(cur, dict):
            if seg in cur:
                out.append(seg)
                cur = cur[seg]
                continue
            tag = cur.get("type", cur.get("format"))
            if seg == tag:
                continue  # the discriminator value pydantic inserts
            out.append(seg)
            exists = False
            cur = None
            continue
        if isinstance(cur, list) and isinstance(seg, int) and 0 <= seg < len(cur):
            out.append(seg)
            cur = cur[seg]
            continue
        if cur is None and not exists:
            out.append(seg)
            continue
        # a segment that names a union member (e.g. 'int', 'list[int]') of a scalar: drop it
        continue
    return tuple(out), exists


def _role_for_tags(tags: list[str]) -> str | None:
    for role in ROLES:
        names = set(get_registry(role).names())
        if tags and set(tags) <= names:
            return role
    return None


def _message(err: dict[str, Any], value_exists: bool) -> str:
    etype = err["type"]
    ctx = err.get("ctx") or {}
    if etype == "missing":
        return "required key is missing"
    if etype == "extra_forbidden":
        return "unknown key (not allowed here)"
    if etype == "union_tag_invalid":
        tag = str(ctx.get("tag"))
        expected = [t.strip().strip("'") for t in str(ctx.get("expected_tags", "")).split(",") if t.strip()]
        role = _role_for_tags(expected)
        valid = get_registry(role).names() if role else expected
        close = difflib.get_close_matches(tag, valid, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        what = role or ctx.get("discriminator", "tag").strip("'")
        return f"unknown {what} {tag!r}{hint} (valid: {', '.join(valid)})"
    if etype == "union_tag_not_found":
        return f"missing {ctx.get('discriminator', 'type')!s} naming the component"
    if etype == "literal_error" and err["loc"] and err["loc"][-1] == "type":
        return f"unknown name {err.get('input')!r}: {err['msg']}"
    msg = err["msg"]
    if etype.endswith("_type") and "input" in err and value_exists:
        msg += f" (got {type(err['input']).__name__} {err['input']!r})"
    return msg.removeprefix("Value error, ")


def _at(data: Any, loc: tuple) -> Any:
    for seg in loc:
        try:
            data = data[seg]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def issues_from_validation(exc: ValidationError, data: Any, located: Located | None) -> list[SpecIssue]:
    """One :class:`SpecIssue` per distinct error, sorted by line."""
    file = located.file if located else "<spec>"
    seen: set[tuple[str, str]] = set()
    issues: list[SpecIssue] = []
    errors = exc.errors()
    # A value valid for none of the members of a plain union yields one error per member; keep the
    # most specific ones (longest location) per path.
    for err in errors:
        loc, exists = _clean_loc(tuple(err["loc"]), data)
        if err["type"] in ("union_tag_invalid", "literal_error") and exists:
            node = _at(data, loc)
            if isinstance(node, dict) and "type" in node and loc[-1:] != ("type",):
                loc = loc + ("type",)
        path = ".".join(map(str, loc))
        msg = _message(err, exists)
        key = (path, msg)
        if key in seen:
            continue
        seen.add(key)
        line = located.line_of(loc) if located else 0
        where = located.file_of(loc) if located and hasattr(located, "file_of") else file
        snippet = located.snippet(line, where) if located else ""
        issues.append(SpecIssue(where, line, path, msg, snippet))
    issues.sort(key=lambda i: (i.line, i.path))
    return issues
