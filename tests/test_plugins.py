"""Entry-point plugins: discovery, lazy import, and every failure mode, with throwaway distributions.

Each test writes a fake installed distribution into ``tmp_path`` (a module plus a
``<name>-<version>.dist-info`` folder with ``METADATA`` and ``entry_points.txt``), puts that folder on
``sys.path`` and resets the registries so that discovery sees it.
"""

from __future__ import annotations

import itertools
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

from cellgi import registry as registry_mod
from cellgi.registry import (
    AUTOLOAD_ENV,
    PluginLoadError,
    UnknownComponentError,
    get_registry,
    installed_plugins,
)
from cellgi.spec import SpecError, parse_spec

BASE = """\
name: t
data:
  synthetic: {num_genes: 50, num_samples: 100}
"""

# A valid aggregator: its module registers it on import (the class carries the registration).
GOOD_AGG = """\
from pydantic import Field
from cellgi.nn.aggregators import GraphAggregator
from cellgi.registry import Params, register


class P(Params):
    scale: float = Field(1.0, description="multiplies the sum")


@register("aggregator", "{name}", summary="scaled sum (test plugin)", params=P)
class Agg(GraphAggregator):
    def __init__(self, scale=1.0, *, dim, num_graphs):
        super().__init__(dim=dim, num_graphs=num_graphs)
        self.scale = scale

    def forward(self, xs):
        return self.scale * sum(xs), None
"""

_counter = itertools.count()


@dataclass
class FakeSite:
    """A folder on ``sys.path`` holding fake installed distributions."""

    root: Path
    modules: list[str] = field(default_factory=list)

    def add(
        self,
        dist: str,
        version: str,
        source: str | None,
        entry_points: dict[str, dict[str, str]],
        module: str | None = None,
    ) -> str:
        """Create distribution ``dist`` with one module (``source``; none if ``None``) and entry points
        ``{group: {name: "module:attr"}}`` where ``{module}`` in the values is the module's name.
        Returns the module name (unique per test session, so ``sys.modules`` never holds a stale one)."""
        module = module or f"cellgi_fake_{dist.replace('-', '_')}_{next(_counter)}"
        if source is not None:
            (self.root / f"{module}.py").write_text(source, encoding="utf-8")
        info = self.root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8"
        )
        lines = []
        for group, eps in entry_points.items():
            lines.append(f"[{group}]")
            lines += [f"{name} = {value.format(module=module)}" for name, value in eps.items()]
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.modules.append(module)
        registry_mod._reset_for_tests()
        return module


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    """Fake site folder on sys.path; afterwards its modules and plugins are forgotten again."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    fake = FakeSite(root)
    yield fake
    sys.path[:] = [p for p in sys.path if p != str(root)]
    for mod in fake.modules:
        sys.modules.pop(mod, None)
    registry_mod._reset_for_tests()


def _spec(aggregator: str) -> str:
    return BASE + f"model:\n  hidden_dim: 8\n  aggregator:\n    type: {aggregator}\n"


def _rows(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    from cellgi.cli.main import main

    assert main(["registry", "list", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


# -- the working path ---------------------------------------------------------------------------


def test_discovery_imports_nothing_and_get_imports(site: FakeSite) -> None:
    mod = site.add("cellgi-fake-lazy", "1.0.0", GOOD_AGG.format(name="lazy_sum"),
                   {"cellgi.aggregators": {"lazy_sum": "{module}:Agg"}})
    reg = get_registry("aggregator")
    assert "lazy_sum" in reg.names()
    assert mod not in sys.modules, "discovery must read metadata only"
    assert ("cellgi-fake-lazy", "1.0.0") in installed_plugins()
    assert mod not in sys.modules
    entry = reg.get("lazy_sum")
    assert mod in sys.modules
    assert (entry.provider, entry.version, entry.status) == ("cellgi-fake-lazy", "1.0.0", "ok")
    agg = reg.build({"type": "lazy_sum", "scale": 2.0}, dim=4, num_graphs=2)
    assert (agg.scale, agg.dim, agg.num_graphs) == (2.0, 4, 2)


def test_spec_naming_a_plugin_imports_only_that_plugin(site: FakeSite) -> None:
    used = site.add("cellgi-fake-used", "0.3.0", GOOD_AGG.format(name="used_sum"),
                    {"cellgi.aggregators": {"used_sum": "{module}:Agg"}})
    unused = site.add("cellgi-fake-unused", "0.4.0", GOOD_AGG.format(name="unused_sum"),
                      {"cellgi.aggregators": {"unused_sum": "{module}:Agg"}})
    spec = parse_spec(_spec("used_sum") + "    scale: 0.5\n")
    assert spec.model.aggregator.type == "used_sum" and spec.model.aggregator.scale == 0.5
    assert used in sys.modules and unused not in sys.modules


def test_entry_point_naming_a_module_that_registers_on_import(site: FakeSite) -> None:
    site.add("cellgi-fake-modep", "2.0.0", GOOD_AGG.format(name="mod_sum"),
             {"cellgi.aggregators": {"mod_sum": "{module}"}})
    entry = get_registry("aggregator").get("mod_sum")
    assert (entry.provider, entry.version) == ("cellgi-fake-modep", "2.0.0")


# -- (1) a plugin whose import raises -------------------------------------------------------------


BROKEN = "raise RuntimeError('needs libfancy >= 3, found 2.1')\n"


def test_broken_plugin_listed_as_broken(site: FakeSite, capsys: pytest.CaptureFixture[str]) -> None:
    site.add("cellgi-fake-broken", "1.2.3", BROKEN, {"cellgi.aggregators": {"fancy_agg": "{module}:Agg"}})
    entries = {e.name: e for e in get_registry("aggregator").load_all()}
    assert entries["fancy_agg"].status.startswith("broken: ")
    assert "RuntimeError: needs libfancy >= 3, found 2.1" in entries["fancy_agg"].status
    assert entries["sum"].status == "ok"  # the built-ins are untouched
    rows = [r for r in _rows(capsys) if r["name"] == "fancy_agg"]
    assert len(rows) == 1
    row = rows[0]
    assert (row["kind"], row["provider"], row["version"]) == ("aggregator", "cellgi-fake-broken", "1.2.3")
    assert row["status"].startswith("broken: ") and "needs libfancy" in row["status"]


def test_broken_plugin_fails_a_spec_that_uses_it(site: FakeSite) -> None:
    site.add("cellgi-fake-broken", "1.2.3", BROKEN, {"cellgi.aggregators": {"fancy_agg": "{module}:Agg"}})
    for attempt in range(2):  # the second time the failure is remembered, not re-imported
        with pytest.raises(SpecError) as exc:
            parse_spec(_spec("fancy_agg"), "s.yaml")
        (issue,) = exc.value.issues
        msg = issue.render(snippet=False)
        assert "cellgi-fake-broken" in msg and "1.2.3" in msg, (attempt, msg)
        assert "RuntimeError: needs libfancy >= 3, found 2.1" in msg, (attempt, msg)
        assert issue.line == 7 and issue.path == "model.aggregator.type", (attempt, msg)
    with pytest.raises(PluginLoadError) as perr:
        get_registry("aggregator").get("fancy_agg")
    assert perr.value.dist == "cellgi-fake-broken" and "needs libfancy" in perr.value.cause


def test_broken_plugin_fails_after_a_listing_too(site: FakeSite) -> None:
    site.add("cellgi-fake-broken", "1.2.3", BROKEN, {"cellgi.aggregators": {"fancy_agg": "{module}:Agg"}})
    get_registry("aggregator").load_all()  # the listing loads (and records) it first
    with pytest.raises(SpecError, match=r"cellgi-fake-broken 1\.2\.3 .*needs libfancy"):
        parse_spec(_spec("fancy_agg"), "s.yaml")


def test_broken_plugin_does_not_affect_a_spec_that_does_not_use_it(site: FakeSite) -> None:
    mod = site.add("cellgi-fake-broken", "1.2.3", BROKEN,
                   {"cellgi.aggregators": {"fancy_agg": "{module}:Agg"}})
    spec = parse_spec(_spec("sum"))
    assert spec.model.aggregator.type == "sum"
    assert mod not in sys.modules


def test_broken_plugin_spec_validate_exit_2(
    site: FakeSite, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cellgi.cli.main import main

    site.add("cellgi-fake-broken", "1.2.3", BROKEN, {"cellgi.aggregators": {"fancy_agg": "{module}:Agg"}})
    bad, good = tmp_path / "bad.yaml", tmp_path / "good.yaml"
    bad.write_text(_spec("fancy_agg"))
    good.write_text(_spec("mean"))
    assert main(["spec", "validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:7:" in err and "cellgi-fake-broken 1.2.3" in err and "needs libfancy" in err
    assert main(["spec", "validate", str(good)]) == 0


def test_broken_plugin_registry_show_names_the_cause(
    site: FakeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    from cellgi.cli.main import main

    site.add("cellgi-fake-broken", "1.2.3", BROKEN, {"cellgi.aggregators": {"fancy_agg": "{module}:Agg"}})
    assert main(["registry", "show", "fancy_agg"]) != 0
    err = capsys.readouterr().err
    assert "cellgi-fake-broken 1.2.3" in err and "needs libfancy" in err


# -- (2) a plugin claiming a built-in's name ------------------------------------------------------


def test_plugin_claiming_builtin_name_is_refused(site: FakeSite, capsys: pytest.CaptureFixture[str]) -> None:
    mod = site.add("cellgi-fake-clash", "0.9.0", GOOD_AGG.format(name="sum"),
                   {"cellgi.aggregators": {"sum": "{module}:Agg"}})
    reg = get_registry("aggregator")
    builtin = reg.get("sum")
    assert builtin.provider == "cellgi" and builtin.status == "ok"
    assert mod not in sys.modules, "a refused plugin is never imported"
    refused = [e for e in reg.load_all() if e.name == "sum" and e.provider == "cellgi-fake-clash"]
    assert len(refused) == 1
    status = refused[0].status
    assert status.startswith("broken: refused")
    assert "cellgi 0.1" in status and "cellgi-fake-clash 0.9.0" in status
    rows = [r for r in _rows(capsys) if r["name"] == "sum" and r["kind"] == "aggregator"]
    assert {r["provider"] for r in rows} == {"cellgi", "cellgi-fake-clash"}
    # a spec naming 'sum' still gets the built-in
    assert parse_spec(_spec("sum")).model.aggregator.type == "sum"


def test_plugin_registering_builtin_name_under_another_entry_point_fails_loudly(site: FakeSite) -> None:
    # entry point 'sneaky' whose module registers 'mean', which cellgi already has
    site.add("cellgi-fake-sneaky", "0.1.0", GOOD_AGG.format(name="mean"),
             {"cellgi.aggregators": {"sneaky": "{module}"}})
    with pytest.raises(PluginLoadError) as exc:
        get_registry("aggregator").get("sneaky")
    msg = str(exc.value)
    assert "cellgi-fake-sneaky 0.1.0" in msg
    assert "'mean' is already registered by cellgi" in msg
    assert get_registry("aggregator").get("mean").provider == "cellgi"


# -- (3) two plugins claiming one name ------------------------------------------------------------


def test_two_plugins_claiming_one_name_are_both_refused(
    site: FakeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    a = site.add("cellgi-fake-twin-a", "1.0.0", GOOD_AGG.format(name="twin"),
                 {"cellgi.aggregators": {"twin": "{module}:Agg"}})
    b = site.add("cellgi-fake-twin-b", "2.0.0", GOOD_AGG.format(name="twin"),
                 {"cellgi.aggregators": {"twin": "{module}:Agg"}})
    reg = get_registry("aggregator")
    rows = [r for r in _rows(capsys) if r["name"] == "twin"]
    assert {r["provider"] for r in rows} == {"cellgi-fake-twin-a", "cellgi-fake-twin-b"}
    for r in rows:
        assert r["status"].startswith("broken: refused")
        assert "cellgi-fake-twin-a 1.0.0" in r["status"] and "cellgi-fake-twin-b 2.0.0" in r["status"]
    with pytest.raises(PluginLoadError, match="several plugins"):
        reg.get("twin")
    with pytest.raises(SpecError) as exc:
        parse_spec(_spec("twin"), "s.yaml")
    msg = str(exc.value)
    assert "s.yaml:7" in msg and "cellgi-fake-twin-a 1.0.0" in msg and "cellgi-fake-twin-b 2.0.0" in msg
    assert a not in sys.modules and b not in sys.modules


# -- (4) the autoload switch ----------------------------------------------------------------------


def test_autoload_switch_turns_discovery_off(site: FakeSite, monkeypatch: pytest.MonkeyPatch) -> None:
    site.add("cellgi-fake-off", "1.0.0", GOOD_AGG.format(name="off_sum"),
             {"cellgi.aggregators": {"off_sum": "{module}:Agg"}})
    monkeypatch.setenv(AUTOLOAD_ENV, "1")
    registry_mod._reset_for_tests()
    reg = get_registry("aggregator")
    assert "off_sum" not in reg.names()
    assert "sum" in reg.names()  # built-ins stay
    assert installed_plugins() == []
    with pytest.raises(UnknownComponentError):
        reg.get("off_sum")
    with pytest.raises(SpecError, match="unknown aggregator 'off_sum'"):
        parse_spec(_spec("off_sum"))
    monkeypatch.setenv(AUTOLOAD_ENV, "0")
    registry_mod._reset_for_tests()
    assert "off_sum" in reg.names()


# -- (5) discovery imports nothing: covered by test_discovery_imports_nothing_and_get_imports ------


def test_listing_names_of_every_role_imports_no_plugin(site: FakeSite) -> None:
    mods = [
        site.add("cellgi-fake-roles", "1.0.0", GOOD_AGG.format(name="roles_sum"),
                 {"cellgi.aggregators": {"roles_sum": "{module}:Agg"},
                  "cellgi.losses": {"roles_loss": "{module}:Loss"}}),
    ]
    for role in registry_mod.ROLES:
        get_registry(role).names()
    assert "roles_loss" in get_registry("loss").names()
    assert not any(m in sys.modules for m in mods)


# -- (6) an entry point that imports but registers nothing ----------------------------------------


def test_entry_point_that_registers_nothing(site: FakeSite) -> None:
    site.add("cellgi-fake-empty", "0.0.1", "class Agg:\n    pass\n",
             {"cellgi.aggregators": {"empty_agg": "{module}:Agg"}})
    with pytest.raises(PluginLoadError) as exc:
        get_registry("aggregator").get("empty_agg")
    msg = str(exc.value)
    assert "cellgi-fake-empty 0.0.1" in msg
    assert "registered no aggregator named 'empty_agg'" in msg
    entries = [e for e in get_registry("aggregator").load_all() if e.name == "empty_agg"]
    assert len(entries) == 1 and entries[0].status.startswith("broken: ")


def test_entry_point_registering_under_another_name(site: FakeSite) -> None:
    site.add("cellgi-fake-wrongname", "0.0.1", GOOD_AGG.format(name="other_name"),
             {"cellgi.aggregators": {"promised": "{module}"}})
    with pytest.raises(PluginLoadError, match="registered no aggregator named 'promised'"):
        get_registry("aggregator").get("promised")


def test_entry_point_pointing_at_a_missing_attribute(site: FakeSite) -> None:
    site.add("cellgi-fake-typo", "0.0.1", GOOD_AGG.format(name="typo_sum"),
             {"cellgi.aggregators": {"typo_sum": "{module}:Agg_"}})
    with pytest.raises(PluginLoadError, match=r"cellgi-fake-typo 0\.0\.1 .*AttributeError"):
        get_registry("aggregator").get("typo_sum")


def test_entry_point_to_a_missing_module(site: FakeSite) -> None:
    site.add("cellgi-fake-nomodule", "0.0.1", None,
             {"cellgi.aggregators": {"ghost_agg": "cellgi_fake_not_there:Agg"}})
    with pytest.raises(PluginLoadError, match=r"cellgi-fake-nomodule .*ModuleNotFoundError"):
        get_registry("aggregator").get("ghost_agg")


def test_reset_forgets_fake_plugins_after_each_test() -> None:
    """The fixture's teardown ran for the tests above: no fake plugin is known any more."""
    for role in registry_mod.ROLES:
        names = get_registry(role).names()
        assert not [n for n in names if n.startswith(("lazy_", "fancy_", "twin", "off_"))]



# -- (7) plugins that print, are slow, or try to replace a built-in (issue 12) --------------------


NOISY = GOOD_AGG + "\nprint('hello from a chatty plugin')\n"


def test_plugin_printing_on_import_does_not_corrupt_json(
    site: FakeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    site.add("cellgi-fake-noisy", "1.0.0", NOISY.format(name="noisy_sum"),
             {"cellgi.aggregators": {"noisy_sum": "{module}:Agg"}})
    from cellgi.cli.main import main

    assert main(["registry", "list", "--json"]) == 0
    out, err = capsys.readouterr()
    rows = json.loads(out)  # stdout is pure JSON
    assert any(r["name"] == "noisy_sum" and r["status"] == "ok" for r in rows)
    assert "hello from a chatty plugin" in err and "hello" not in out


SLOW = "import time\ntime.sleep(SECONDS)\n" + GOOD_AGG


def test_slow_plugin_is_named_while_it_loads(
    site: FakeSite, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    site.add("cellgi-fake-slow", "3.1.4", SLOW.replace("SECONDS", "0.6").format(name="slow_sum"),
             {"cellgi.aggregators": {"slow_sum": "{module}:Agg"}})
    monkeypatch.setenv(registry_mod.SLOW_ENV, "0.2")
    entry = get_registry("aggregator").get("slow_sum")
    assert entry.status == "ok"
    err = capsys.readouterr().err
    assert "still importing plugin cellgi-fake-slow 3.1.4" in err and "slow_sum" in err


def test_plugin_import_timeout_names_the_distribution(
    site: FakeSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.add("cellgi-fake-hang", "0.0.9", SLOW.replace("SECONDS", "30").format(name="hang_sum"),
             {"cellgi.aggregators": {"hang_sum": "{module}:Agg"}})
    monkeypatch.setenv(registry_mod.SLOW_ENV, "0")
    monkeypatch.setenv(registry_mod.TIMEOUT_ENV, "0.5")
    import time

    t0 = time.perf_counter()
    with pytest.raises(PluginLoadError) as exc:
        get_registry("aggregator").get("hang_sum")
    assert time.perf_counter() - t0 < 10
    msg = str(exc.value)
    assert "cellgi-fake-hang 0.0.9" in msg and "CELLGI_PLUGIN_TIMEOUT=0.5" in msg
    # listed as broken, with the cause; the listing does not hang either
    rows = [e for e in get_registry("aggregator").load_all() if e.name == "hang_sum"]
    assert len(rows) == 1 and "did not finish" in rows[0].status


OVERRIDE_BUILTIN = GOOD_AGG.replace('params=P)', 'params=P, override=True)')


def test_plugin_can_never_override_a_builtin(site: FakeSite, capsys: pytest.CaptureFixture[str]) -> None:
    # entry point 'sneaky2' whose module registers 'sum' with override=True
    site.add("cellgi-fake-override", "0.2.0", OVERRIDE_BUILTIN.format(name="sum"),
             {"cellgi.aggregators": {"sneaky2": "{module}"}})
    reg = get_registry("aggregator")
    with pytest.raises(PluginLoadError) as exc:
        reg.get("sneaky2")
    assert "built-in name can never be replaced" in str(exc.value)
    assert "cellgi-fake-override 0.2.0" in str(exc.value)
    entry = reg.get("sum")
    assert entry.provider == "cellgi" and entry.module == "cellgi.nn.aggregators"
    rows = [r for r in _rows(capsys) if r["name"] == "sum" and r["kind"] == "aggregator"]
    assert [r["provider"] for r in rows] == ["cellgi"]


def test_builtins_are_cellgis_own_entry_points() -> None:
    """Every built-in member is declared in cellgi's entry points, and every declared one is loaded."""
    declared = {(role, r.name) for role, recs in registry_mod.builtin_records().items() for r in recs}
    loaded = {
        (role, name)
        for role in registry_mod.ROLES
        for name, e in get_registry(role).loaded().items()
        if e.provider == "cellgi"
    }
    assert declared == loaded
    # the registry package imports no layer above it
    import ast
    import pathlib

    import cellgi.registry

    for path in pathlib.Path(cellgi.registry.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith(("cellgi.nn", "cellgi.training", "cellgi.data", "cellgi.spec")), (
                    path.name, node.module)


# -- (8) a data-format plugin: a new graph and screen file layout, no edit to cellgi ------------------

FORMAT_PLUGIN = '''
from pydantic import Field

from cellgi.data.readers import GraphFormat, RawEdgesBuilder, RawScreenBuilder, ScreenFormat
from cellgi.registry import Params, register

print("format plugin says hello")  # on import: must not reach stdout


class PipeParams(Params):
    sep: str = Field("|", description="separator between the two genes")


@register("graph_format", "pipe_pairs", summary="GENE|GENE lines (test plugin)", params=PipeParams)
class PipePairs(GraphFormat):
    def read(self, spec, files):
        b = RawEdgesBuilder(files["path"], weighted=False)
        for i, line in enumerate(files["path"].read_text().splitlines(), 1):
            a, c = line.split(spec.sep)
            b.add(a, c, i)
        return b.build()


class PlusParams(Params):
    pass


@register("screen_format", "plus_screen", summary="GENE+GENE score lines (test plugin)", params=PlusParams)
class PlusScreen(ScreenFormat):
    def read(self, spec, files):
        b = RawScreenBuilder(files["path"], ["gene_interaction"], weighted=False)
        for i, line in enumerate(files["path"].read_text().splitlines(), 1):
            genes, score = line.split()
            b.add(genes.split("+"), {"gene_interaction": float(score)}, i)
        return b.build()
'''


def _format_files(folder: Path) -> None:
    import random

    rng = random.Random(0)
    genes = [f"Y{i:03d}W" for i in range(40)]
    edges = {(rng.randrange(40), rng.randrange(40)) for _ in range(120)}
    (folder / "g.pipe").write_text("".join(f"{genes[a]}|{genes[b]}\n" for a, b in sorted(edges) if a != b))
    rows = []
    for _ in range(120):
        k = rng.choice([2, 3])
        rows.append("+".join(rng.sample(genes, k)) + f" {rng.gauss(0, 1):.4f}\n")
    (folder / "s.plus").write_text("".join(rows))


FORMAT_SPEC = """\
name: fmt
data:
  graphs:
    - {name: pipe, format: pipe_pairs, path: g.pipe}
  screens:
    - {format: plus_screen, path: s.plus}
  batch_size: 16
  cache: false
model:
  hidden_dim: 8
  num_layers: 1
  local_predictor: {type: hypergraph_attention, num_heads: 2}
training:
  max_epochs: 1
  trainer: {accelerator: cpu, devices: 1}
"""


def test_format_plugin_reads_files_and_trains(
    site: FakeSite, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site.add("cellgi-fake-formats", "0.5.0", FORMAT_PLUGIN,
             {"cellgi.graph_formats": {"pipe_pairs": "{module}:PipePairs"},
              "cellgi.screen_formats": {"plus_screen": "{module}:PlusScreen"}})
    _format_files(tmp_path)
    (tmp_path / "fmt.yaml").write_text(FORMAT_SPEC)
    from cellgi.cli.main import main

    # the spec names the plugin's formats: `data summary --json` imports it, and its print goes to stderr
    assert main(["data", "summary", str(tmp_path / "fmt.yaml"), "--json", "--no-cache"]) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert "format plugin says hello" in err and "hello" not in out
    assert summary["edges"]["pipe"]["edges"] > 0 and summary["screens"][0]["rows"] == 120
    rows = {(r["kind"], r["name"]): r for r in _rows(capsys)}
    assert rows[("graph_format", "pipe_pairs")]["provider"] == "cellgi-fake-formats"
    assert rows[("screen_format", "plus_screen")]["status"] == "ok"
    assert rows[("graph_format", "edgelist")]["provider"] == "cellgi"
    from cellgi.data.graphs import graph_input_files
    from cellgi.spec import load_spec
    from cellgi.training.runner import train

    spec = load_spec(tmp_path / "fmt.yaml")
    assert spec.data.graphs[0].format == "pipe_pairs" and spec.data.graphs[0].sep == "|"
    assert graph_input_files(spec.data.graphs[0], spec.data.root) == [tmp_path / "g.pipe"]
    result = train(spec, run_dir=tmp_path / "run", progress=False)
    assert result.epochs == 1
    assert any(k.startswith("test") for k in result.metrics), result.metrics
    # a misspelt option of the plugin's format is refused with its location
    (tmp_path / "bad.yaml").write_text(FORMAT_SPEC.replace("path: g.pipe}", "path: g.pipe, sepp: ','}"))
    with pytest.raises(SpecError, match=r"bad.yaml:4: data.graphs.0.sepp"):
        load_spec(tmp_path / "bad.yaml")


# -- a plugin declaring a capability wrongly ---------------------------------------------------------

BAD_CAPABILITY = """\
from cellgi.nn.heads import HypergraphAttention
from cellgi.registry import NoParams, register


@register("local_predictor", "{name}", summary="claims relations but takes no num_relations", params=NoParams)
class Head(HypergraphAttention):
    uses_relations = True
"""


def test_plugin_with_a_wrong_capability_is_broken_and_names_itself(
    site: FakeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    site.add("cellgi-fake-badcap", "0.2.0", BAD_CAPABILITY.format(name="bad_rel"),
             {"cellgi.local_predictors": {"bad_rel": "{module}:Head"}})
    site.add("cellgi-fake-good", "1.0.0", GOOD_AGG.format(name="good_sum"),
             {"cellgi.aggregators": {"good_sum": "{module}:Agg"}})
    entries = {e.name: e for e in get_registry("local_predictor").load_all()}
    status = entries["bad_rel"].status
    assert status.startswith("broken: ") and "breaks the local_predictor contract" in status
    assert "declares uses_relations = True" in status and "does not accept num_relations" in status
    assert entries["hypergraph_attention"].status == "ok"
    assert get_registry("aggregator").get("good_sum").status == "ok"  # another plugin is untouched
    with pytest.raises(PluginLoadError) as err:
        get_registry("local_predictor").get("bad_rel")
    assert err.value.dist == "cellgi-fake-badcap" and "num_relations" in err.value.cause
    row = next(r for r in _rows(capsys) if r["name"] == "bad_rel")
    assert (row["provider"], row["version"]) == ("cellgi-fake-badcap", "0.2.0")
