"""Sizes that drive allocation are checked against memory before any data is read (cellgi/nn/memory.py)."""

from __future__ import annotations

import pytest
from tiny_specs import tiny_spec

from cellgi.spec import SpecError, parse_spec, validate_spec
from cellgi.nn.memory import check_memory, estimate_memory
from cellgi.spec.yamlio import parse_yaml


def _tiny_data():
    return {
        "synthetic": {"num_genes": 30, "num_samples": 40, "edge_types": {"a": 60, "b": 40}, "directed": ["b"]},
        "cache": False,
    }


@pytest.mark.parametrize("hidden_dim", [8, 520])  # 520: extrapolated from widths 40, 80, 120
@pytest.mark.parametrize("aggregator", ["sum", "pairwise_interaction", "cross_attention"])
def test_parameter_count_is_exact(aggregator, hidden_dim):
    """The estimate equals the parameters of the model actually built (also when extrapolated)."""
    from cellgi.data.synthetic import generate_dataset
    from cellgi.nn.model import LazyDango

    spec = validate_spec(
        {"name": "x", "data": _tiny_data(), "model": {"hidden_dim": hidden_dim, "num_layers": 2, "aggregator": {"type": aggregator}}}
    )
    graph, _, _ = generate_dataset(spec.data.synthetic, target_names=spec.data.targets)
    model = LazyDango.from_spec(spec.model, graph, len(spec.data.targets))
    est = estimate_memory(spec)
    assert est.parameters == sum(p.numel() for p in model.parameters())
    assert est.num_genes == 30 and est.activation_bytes == 30 * 32 * hidden_dim * 2 * 2 * 4


def test_hidden_dim_too_large_is_a_located_error():
    text = tiny_spec("big").replace("hidden_dim: 16", "hidden_dim: 100000")
    with pytest.raises(SpecError) as exc:
        parse_spec(text, "big.yaml", checks=[check_memory])
    issue = exc.value.issues[0]
    assert issue.path == "model.hidden_dim" and issue.file == "big.yaml"
    assert issue.line == text.splitlines().index("  hidden_dim: 100000") + 1
    assert "parameters" in issue.message and "GB" in issue.message and "available" in issue.message


def test_batch_size_too_large_names_batch_size():
    text = tiny_spec("b").replace("batch_size: 32", "batch_size: 100000000")
    located = parse_yaml(text, "b.yaml")
    spec = validate_spec(located.data)  # without ``located``: no check
    with pytest.raises(SpecError) as exc:
        check_memory(spec, located, available=10**9)
    assert exc.value.issues[0].path == "data.batch_size"


def test_a_tiny_spec_fits_and_the_check_can_be_skipped(monkeypatch):
    text = tiny_spec("t")
    assert parse_spec(text, checks=[check_memory]).model.hidden_dim == 16
    located = parse_yaml(text.replace("hidden_dim: 16", "hidden_dim: 100000"))
    spec = validate_spec(located.data)
    monkeypatch.setenv("CELLGI_SKIP_MEMORY_CHECK", "1")
    assert check_memory(spec, located).parameters > 10**10


def test_generated_data_too_large_names_the_synthetic_key():
    text = tiny_spec("s").replace("num_samples: 500", "num_samples: 100000000000")
    located = parse_yaml(text, "s.yaml")
    spec = validate_spec(located.data)
    with pytest.raises(SpecError) as exc:
        check_memory(spec, located, available=10**10)
    assert exc.value.issues[0].path == "data.synthetic.num_samples"
    assert exc.value.issues[0].line == text.splitlines().index("    num_samples: 100000000000") + 1


def test_gpu_runs_compare_training_memory_with_one_gpu(monkeypatch):
    import cellgi.nn.memory as res

    text = tiny_spec("g").replace("accelerator: cpu", "accelerator: gpu").replace("hidden_dim: 16", "hidden_dim: 4000")
    located = parse_yaml(text, "g.yaml")
    spec = validate_spec(located.data)
    est = estimate_memory(spec)
    monkeypatch.setattr(res, "_cuda_available", lambda: True)
    monkeypatch.setattr(res, "_gpu_memory", lambda s: est.parameters * 16 - 1)  # weights fit the host, not the GPU
    with pytest.raises(SpecError) as exc:
        check_memory(spec, located, available=est.host_bytes + 1)
    assert exc.value.issues[0].path == "model.hidden_dim" and "one GPU" in exc.value.issues[0].message
    monkeypatch.setattr(res, "_gpu_memory", lambda s: est.parameters * 16 + est.activation_bytes)
    assert check_memory(spec, located, available=est.host_bytes + 1).parameters == est.parameters
