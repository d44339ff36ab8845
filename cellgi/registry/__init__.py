"""Component registries: one per role, with entry-point discovery for built-ins and plugins alike.

Every pluggable part of cellgi (message-passing convs, graph aggregators, predictor heads, poolings,
combiners, losses, graph and screen file formats, gene feature sources) is registered under a short
name in the registry of its *role*. A member registers with a one-line summary and a pydantic params
model; the params model is the only source of the member's constructor arguments (besides the
structural context the model assembly passes, such as ``dim`` and ``num_graphs``, which each role
documents). Each role has a contract (:mod:`cellgi.registry.roles`) checked at registration.

The pieces:

- :mod:`cellgi.registry.records`: immutable entry-point records, *find* (metadata only) -> *load*
  (guarded import) -> *classify* (which plugin may provide a name);
- :mod:`cellgi.registry.core`: the :class:`Registry` of one role, :func:`register`, :func:`build`;
- :mod:`cellgi.registry.roles`: the roles, their entry-point groups and contracts;
- :mod:`cellgi.registry.display`: rows and tables for ``cellgi registry list|show``.

Built-ins are cellgi's own entry points (``pyproject.toml``), so discovery treats them like plugins and
this package imports no layer above it. A plugin may never replace a built-in's name. Third-party
packages add members through entry points, one group per role (``cellgi.convs``, ...). Setting
``CELLGI_DISABLE_PLUGIN_AUTOLOAD=1`` turns plugin discovery off (built-ins stay).

Example (inside a plugin module)::

    from cellgi.registry import Params, register

    class TopKParams(Params):
        k: int = Field(2, ge=1, description="graphs kept per node")

    @register("aggregator", "topk", summary="keep the k best-scoring graphs per node", params=TopKParams)
    class TopK(GraphAggregator):
        def __init__(self, k: int = 2, *, dim: int, num_graphs: int): ...
"""

from __future__ import annotations

from cellgi.registry import core, errors, roles
from cellgi.registry.core import *  # noqa: F403 - the registry API (core.__all__)
from cellgi.registry.core import _reset_for_tests  # noqa: F401 - the test-suite's plugin fixtures
from cellgi.registry.errors import *  # noqa: F403
from cellgi.registry.records import SLOW_ENV, TIMEOUT_ENV, PluginRecord
from cellgi.registry.roles import *  # noqa: F403

__all__ = [*core.__all__, *errors.__all__, *roles.__all__, "SLOW_ENV", "TIMEOUT_ENV", "PluginRecord"]
