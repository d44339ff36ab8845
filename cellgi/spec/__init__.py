"""Validated run specs: YAML in, a frozen pydantic :class:`Spec` out, errors as ``FILE:LINE: path: message``.

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
