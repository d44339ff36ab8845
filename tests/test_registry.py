"""Registry: registration rules, unknown names, params as the only constructor source."""

from __future__ import annotations

import pytest
from pydantic import Field, ValidationError

from cellgi.registry import (
    ROLES,
    ComponentError,
    DuplicateComponentError,
    Params,
    UnknownComponentError,
    get_registry,
    register,
)


class _P(Params):
    width: int = Field(3, ge=1, description="a width")


@pytest.fixture
def scratch():
    reg = get_registry("loss")
    added: list[str] = []
    yield reg, added
    for name in added:
        reg.remove(name)


def test_every_role_has_builtins():
    for role in ROLES:
        assert get_registry(role).names(), f"role {role} has no built-in member"


def test_builtin_provider_is_cellgi():
    entry = get_registry("loss").get("logcosh")
    assert entry.provider == "cellgi"
    assert entry.status == "ok"


def test_register_and_build_passes_params_and_context(scratch):
    reg, added = scratch

    @register("loss", "scratch_width", summary="test member", params=_P)
    class Member:
        def __init__(self, width: int = 3, *, dim: int = 0):
            self.width, self.dim = width, dim

    added.append("scratch_width")
    obj = reg.build({"type": "scratch_width", "width": 5}, dim=7)
    assert (obj.width, obj.dim) == (5, 7)
    assert reg.get("scratch_width").build().width == 3


def test_params_are_validated_on_build(scratch):
    reg, added = scratch
    register("loss", "scratch_v", summary="s", params=_P)(lambda width=3: width)
    added.append("scratch_v")
    with pytest.raises(ValidationError):
        reg.build({"type": "scratch_v", "width": 0})
    with pytest.raises(ValidationError):
        reg.build({"type": "scratch_v", "colour": 1})
    with pytest.raises(ValidationError):  # strict: no '3' -> 3 coercion
        reg.build({"type": "scratch_v", "width": "3"})


def test_duplicate_name_names_both_providers(scratch):
    reg, added = scratch

    def first(width=3):
        return width

    def second(width=3):
        return width

    register("loss", "scratch_dup", summary="s", params=_P)(first)
    added.append("scratch_dup")
    with pytest.raises(DuplicateComponentError) as exc:
        register("loss", "scratch_dup", summary="s", params=_P)(second)
    msg = str(exc.value)
    assert msg.count("test_registry") >= 2 and "already registered" in msg and "tried to register" in msg
    register("loss", "scratch_dup", summary="s", params=_P, override=True)(second)
    assert reg.get("scratch_dup").factory is second


def test_duplicate_of_builtin_refused():
    with pytest.raises(DuplicateComponentError, match="logcosh"):
        register("loss", "logcosh", summary="s", params=_P)(lambda width=3: width)


def test_unknown_name_lists_choices_and_closest():
    with pytest.raises(UnknownComponentError) as exc:
        get_registry("loss").get("logcos")
    msg = str(exc.value)
    assert "did you mean 'logcosh'" in msg and "mse" in msg


def test_params_field_not_accepted_by_constructor_is_refused():
    with pytest.raises(ComponentError, match="does not accept params"):
        register("loss", "scratch_bad", summary="s", params=_P)(lambda: None)
    assert "scratch_bad" not in get_registry("loss").names()


def test_params_may_not_define_type():
    class Bad(Params):
        type: str = "x"

    with pytest.raises(ComponentError, match="'type'"):
        register("loss", "scratch_type", summary="s", params=Bad)(lambda type="x": None)


def test_unknown_role():
    with pytest.raises(UnknownComponentError, match="role"):
        get_registry("convolution")


def test_describe_lists_types_defaults_descriptions():
    rows = {r["name"]: r for r in get_registry("loss").get("huber").describe()}
    assert rows["delta"]["default"] == 1.0
    assert rows["delta"]["type"] == "float"
    assert "quadratic" in rows["delta"]["description"]


def test_describe_shows_literal_choices():
    rows = {r["name"]: r for r in get_registry("conv").get("masked_gin").describe()}
    literal_rows = [r for r in rows.values() if r["type"].startswith("Literal")]
    assert literal_rows, "masked_gin has a choice-valued parameter"
    assert all("'" in r["type"] for r in literal_rows), literal_rows
