"""One loader for every trained predictor: folders written by `cellgi train` (a run, a seed series, a stacked
run) load through the registered kinds, and `predict_file`, `evaluate_screen` and `run_screen` give what the
networks' own forward (`model(batch)`) gives, to 1e-6; a plugin's kind loads and predicts the same way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cellgi.apps.evaluate import evaluate_screen, screen_description
from cellgi.apps.predict import predict_file
from cellgi.apps.screen import plan_screen, run_screen
from cellgi.cli.main import main
from cellgi.data.batch import PerturbationBatch, collate_index_sets
from cellgi.predictors import TrainedPredictor, load_predictor
from cellgi.predictors.ensemble import LoadedEnsemble
from cellgi.predictors.loader import predictor_kinds
from cellgi.predictors.network import LoadedModel, load_network
from cellgi.predictors.scoring import PredictScorer
from cellgi.predictors.stack import LoadedStack
from cellgi.registry import get_registry, register
from cellgi.runfolder.checkpoint import CheckpointError
from cellgi.runfolder.layout import PathKind, kind_of

from run_checks import read_tsv
from tiny_specs import write_tiny_spec

#: a wildtype-only model (the yeast configs' kind) for the series and the stack; the single run keeps the
#: tiny spec's global part (message passing per batch)
LOCAL_ONLY = ["model.local_predictor={type: pair_relations, num_layers: 2}", "model.combiner={type: local_only}"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """Run folders written by `cellgi train` as it stands: one run, a seed series, a stacked run."""
    base = tmp_path_factory.mktemp("load_predictor")
    spec = write_tiny_spec(base, epochs=1)
    out = {"network": base / "single", "ensemble": base / "series", "stack": base / "stacked"}
    assert main(["train", str(spec), "--run-dir", str(out["network"]), "--no-progress"]) == 0
    assert main(["train", str(spec), *LOCAL_ONLY, "--seeds", "0,1", "--run-dir", str(out["ensemble"]),
                 "--no-progress"]) == 0
    assert main(["train", str(spec), *LOCAL_ONLY, "training.stack={baselines: [features]}",
                 "--run-dir", str(out["stack"]), "--no-progress"]) == 0
    return out


def _batch(sets: list[list[int]], t: int) -> PerturbationBatch:
    return collate_index_sets([torch.tensor(s) for s in sets], torch.full((len(sets), t), float("nan")))


@torch.no_grad()
def _forward(net: LoadedModel, batch: PerturbationBatch) -> torch.Tensor:
    """One network's own forward, in original units."""
    return net.normalizer.inverse(net.model.eval()(batch)[0].float())


def _reference(kind: str, folder: Path, sets: list[list[int]]) -> torch.Tensor:
    """What the folder predicts, from the networks' forward (and for the stack, the stored weights applied
    by hand to the network's and the baselines' normalised predictions)."""
    if kind == "ensemble":
        members = [load_network(folder / f"seed_{s}") for s in (0, 1)]
        batch = _batch(sets, len(members[0].target_names))
        return torch.stack([_forward(m, batch) for m in members]).mean(0)
    net = load_network(folder)
    batch = _batch(sets, len(net.target_names))
    pred = _forward(net, batch)
    if kind == "network":
        return pred
    st = load_predictor(folder).stack
    cols = [net.normalizer.transform(pred)] + [
        st.baselines[name].predict(batch.pert_padded, batch.pert_mask).float() for name in st.members[1:]]
    blend = st.intercept + sum(st.weights[:, k] * c for k, c in enumerate(cols))
    return net.normalizer.inverse(blend)


def _sets(n_genes: int) -> list[list[int]]:
    g = torch.Generator().manual_seed(3)
    return [torch.randperm(n_genes, generator=g)[: 2 if i % 4 else 3].tolist() for i in range(90)]


def _close(got: list[float], want: torch.Tensor) -> None:
    """Within 1e-6 (absolute, plus 1e-6 relative for the files' 6-7 significant digits)."""
    torch.testing.assert_close(torch.tensor(got, dtype=torch.float32), want.float(), atol=1e-6, rtol=1e-6)


# -------------------------------------------------------------------------------------------- kinds
def test_the_kinds_are_asked_by_precedence_and_each_folder_loads_as_its_kind(folders):
    assert [name for name, _ in predictor_kinds()][:3] == ["stack", "ensemble", "network"]
    classes = {"network": LoadedModel, "ensemble": LoadedEnsemble, "stack": LoadedStack}
    for kind, folder in folders.items():
        loaded = load_predictor(folder)
        assert isinstance(loaded, classes[kind]) and loaded.kind == kind
        assert isinstance(loaded, TrainedPredictor)
    assert [kind_of(f) for f in folders.values()] == [PathKind.RUN, PathKind.SERIES, PathKind.STACKED]
    stacked = load_predictor(folders["stack"])
    assert isinstance(stacked.network, LoadedModel)  # composition: the stack has the network it blends
    assert load_predictor(folders["stack"], stack=False).kind == "network"
    assert [m.path.parent.name for m in load_predictor(folders["ensemble"]).networks()] == ["seed_0", "seed_1"]


def test_a_folder_without_a_checkpoint_names_what_it_looked_for(tmp_path):
    with pytest.raises(CheckpointError, match="run folder has no checkpoint"):
        load_predictor(tmp_path)
    with pytest.raises(CheckpointError, match="no such file or run folder"):
        load_predictor(tmp_path / "gone")


def test_an_unloadable_folder_names_the_plugin_kinds_that_failed_to_load(tmp_path, monkeypatch):
    """A plugin kind that could not be imported may own the folder: the error says so."""
    import cellgi.predictors.loader as loader

    monkeypatch.setattr(loader, "_broken_kinds", lambda: "my_kind (broken: ImportError: no module my_plugin)")
    with pytest.raises(CheckpointError, match=r"has no checkpoint .*could not be loaded.*my_kind \(broken"):
        load_predictor(tmp_path)


# ------------------------------------------------------------------------------------- same numbers
@pytest.mark.parametrize("kind", ["network", "ensemble", "stack"])
def test_predict_evaluate_and_screen_give_the_forward_numbers(folders, kind, tmp_path):
    folder = folders[kind]
    loaded = load_predictor(folder)
    genes = list(loaded.mapper.genes)
    sets = _sets(len(genes))
    want = _reference(kind, folder, sets)
    # predict_file: one set per line
    inp = tmp_path / "sets.txt"
    inp.write_text("".join(";".join(genes[g] for g in s) + "\n" for s in sets))
    predict_file(loaded, inp, tmp_path / "pred.tsv", batch_size=32)
    _close([float(r["gene_interaction"]) for r in read_tsv(tmp_path / "pred.tsv")], want[:, 0])
    # evaluate_screen: the pairs with a measured score, every row's prediction written
    pairs = [i for i, s in enumerate(sets) if len(s) == 2]
    data = tmp_path / "measured.tsv"
    data.write_text("gene_a\tgene_b\tscore\n" + "".join(
        f"{genes[sets[i][0]]}\t{genes[sets[i][1]]}\t{0.01 * k}\n" for k, i in enumerate(pairs)))
    desc = screen_description(data, "table", loaded.target_names, gene_columns=["gene_a", "gene_b"],
                              target_columns={"gene_interaction": "score"})
    report = evaluate_screen(loaded, desc, predictions=tmp_path / "rows.tsv")
    assert report["n_samples"] == len(pairs)
    _close([float(r["prediction"]) for r in read_tsv(tmp_path / "rows.tsv")], want[pairs, 0])
    # run_screen: one query gene against 40 array genes
    plan = plan_screen(loaded.mapper, [genes[0]], arrays=genes[1:41])
    run_screen(loaded, plan, tmp_path / "screen.tsv", top_k=0, batch_size=16, progress=False)
    screened = [[0, a] for a in range(1, 41)]
    _close([float(r["gene_interaction"]) for r in read_tsv(tmp_path / "screen.tsv")],
           _reference(kind, folder, screened)[:, 0])


# ------------------------------------------------------------------------------------ a plugin's kind
class _ConstantPredictor:
    """A plugin's trained predictor: a constant per target, read from ``constant.json``."""

    kind = "test_constant"

    def __init__(self, path: Path, network: LoadedModel, value: float):
        self.path, self.network, self.value = path, network, value
        self.spec, self.target_names, self.graph = network.spec, network.target_names, network.graph
        self.mapper, self.normalizer, self.meta, self.model = network.mapper, network.normalizer, {}, network.model

    def predict(self, batch):
        return torch.full((batch.num_samples, len(self.target_names)), self.value), {}

    def scorer(self, batch_size=None):
        return PredictScorer(self, batch_size=batch_size)

    def default_batch_size(self):
        return 64

    def networks(self):
        return [self.network]

    def one_network(self, command):
        return self.network

    def to(self, device):
        return self

    def digest(self):
        return f"sha256:constant-{self.value}"

    def describe(self):
        return f"the constant {self.value}"


@pytest.fixture
def constant_kind():
    @register("predictor_kind", "test_constant", summary="a constant, for the tests")
    class ConstantKind:
        precedence = 50

        def recognises(self, path: Path) -> bool:
            return (path / "constant.json").is_file()

        def load(self, path: Path, *, map_location="cpu", prefer="best") -> _ConstantPredictor:
            value = json.loads((path / "constant.json").read_text())["value"]
            return _ConstantPredictor(path, load_network(path / "net", map_location=map_location), value)

    yield ConstantKind
    get_registry("predictor_kind").remove("test_constant")


def test_a_registered_kind_loads_its_folders_and_predicts_through_the_commands(constant_kind, folders, tmp_path):
    import shutil

    folder = tmp_path / "constant"
    shutil.copytree(folders["network"], folder / "net")
    (folder / "constant.json").write_text(json.dumps({"value": 0.25}))
    loaded = load_predictor(folder)
    assert isinstance(loaded, _ConstantPredictor) and isinstance(loaded, TrainedPredictor)
    inp = tmp_path / "sets.txt"
    inp.write_text("SYN0001;SYN0002\nSYN0003;SYN0004;SYN0005\n")
    assert main(["predict", str(folder), "--genes", str(inp), "-o", str(tmp_path / "p.tsv"), "--no-progress"]) == 0
    assert [float(r["gene_interaction"]) for r in read_tsv(tmp_path / "p.tsv")] == [0.25, 0.25]
    assert load_predictor(folders["network"]).kind == "network"  # other folders are not its
