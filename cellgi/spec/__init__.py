"""Validated run specs: YAML in, a frozen pydantic :class:`Spec` out, errors as ``FILE:LINE: path: message``.

Above the metrics and the registry, below the data (docs/architecture.md): YAML with each key's line
(:mod:`~cellgi.spec.yamlio`), ``extends``/``include`` (:mod:`~cellgi.spec.compose`), ``key=value`` overrides
(:mod:`~cellgi.spec.overrides`), the sections' models (:mod:`~cellgi.spec.data`, :mod:`~cellgi.spec.model`,
:mod:`~cellgi.spec.training`, :mod:`~cellgi.spec.sweep`), the root :class:`Spec` and its validation
(:mod:`~cellgi.spec.validation`), reading a file or text (:mod:`~cellgi.spec.loading`). A spec module builds
nothing: a check that needs more (the memory estimate builds small models: :mod:`cellgi.nn.memory`) is
passed in by the caller, ``load_spec(path, checks=[check_memory])``.

Example::

    from cellgi.spec import load_spec
    spec = load_spec("configs/quickstart.yaml")
    spec.model.aggregator.type   # 'sum'
"""

from cellgi.spec.errors import SpecError, SpecIssue
from cellgi.spec.loading import load_spec, parse_spec
from cellgi.spec.validation import Spec, SpecCheck, spec_json_schema, spec_model, validate_spec

__all__ = [
    "Spec",
    "SpecCheck",
    "SpecError",
    "SpecIssue",
    "load_spec",
    "parse_spec",
    "spec_json_schema",
    "spec_model",
    "validate_spec",
]
