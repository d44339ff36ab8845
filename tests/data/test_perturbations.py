import numpy as np
import pytest
import torch

from cellgi.data.batch import collate_index_sets
from cellgi.data.normalize import TargetNormalizer
from cellgi.data.perturbations import PerturbationDataset, concat_datasets, merge_duplicates


def _ds():
    return PerturbationDataset.from_sets([[1, 2], [3, 4, 5], [2, 1], [0]], [[1.0], [2.0], [float("nan")], [4.0]], ["gi"], 10)


def test_batch_equals_reference_collate():
    ds = _ds()
    idx = [1, 0, 3]
    b = ds.batch(idx)
    ref = collate_index_sets([ds.genes_of(i) for i in idx], ds.y[idx], sample_idx=torch.tensor(idx))
    for f in ("pert_idx", "pert_batch", "pert_ptr", "pert_padded", "pert_mask", "y", "weight", "sample_idx"):
        assert torch.equal(getattr(b, f), getattr(ref, f)), f
    assert ds.kind_counts() == {"digenic": 2, "trigenic": 1, "other": 1}


def test_subset_concat_state_roundtrip():
    ds = _ds()
    sub = ds.subset([2, 1])
    assert sub.genes_of(0).tolist() == [2, 1] and sub.genes_of(1).tolist() == [3, 4, 5]
    both = concat_datasets([ds, sub])
    assert len(both) == 6 and both.genes_of(5).tolist() == [3, 4, 5]
    back = PerturbationDataset.from_state_dict(ds.state_dict())
    assert torch.equal(back.pert_idx, ds.pert_idx) and torch.equal(back.ptr, ds.ptr)


def test_duplicate_policies():
    ds = _ds()  # samples 0 and 2 are the same set {1, 2}
    for policy, n in (("keep_all", 4), ("first", 3), ("mean", 3)):
        out, st = merge_duplicates(ds, policy)
        assert len(out) == n and st.groups == 1 and st.rows == 1
    mean, _ = merge_duplicates(ds, "mean")
    assert mean.y[0, 0].item() == 1.0  # the NaN measurement is ignored
    with pytest.raises(ValueError, match="repeated"):
        merge_duplicates(ds, "error")


def test_validation_errors():
    with pytest.raises(ValueError, match="at least one"):
        PerturbationDataset(torch.tensor([1]), torch.tensor([0, 0, 1]), torch.zeros(2, 1), ["t"], 5)
    with pytest.raises(ValueError, match="out of range"):
        PerturbationDataset.from_sets([[7]], [[0.0]], ["t"], 5)


def test_memory_of_100k_samples_is_a_few_mb():
    s = 100_000
    rng = np.random.default_rng(0)
    sizes = rng.choice([2, 3], s)
    ptr = np.zeros(s + 1, dtype=np.int64)
    ptr[1:] = np.cumsum(sizes)
    ds = PerturbationDataset(
        torch.from_numpy(rng.integers(0, 6607, int(ptr[-1]))), torch.from_numpy(ptr),
        torch.randn(s, 2), ["gene_interaction", "fitness"], 6607,
    )
    assert ds.nbytes() < 6 * 2**20, ds.nbytes()
    # no per-sample Python objects anywhere
    assert all(not isinstance(v, list) or len(v) < 10 for v in vars(ds).values())
    b = ds.batch(torch.arange(0, s, 97))
    assert b.num_samples == len(range(0, s, 97))


def test_normalizer_fit_transform_inverse_state():
    y = torch.tensor([[1.0, 5.0], [3.0, float("nan")], [5.0, 5.0]])
    n = TargetNormalizer("zscore", target_names=["a", "b"]).fit(y)
    z = n.transform(y)
    assert z[:, 0].mean().abs() < 1e-6 and torch.isnan(z[1, 1])
    assert any("zero spread" in w for w in n.warnings)
    assert torch.allclose(n.inverse(z)[:, 0], y[:, 0])
    n2 = TargetNormalizer.from_state_dict(n.state_dict())
    assert torch.equal(n2.mean, n.mean) and torch.equal(n2.std, n.std)
    ident = TargetNormalizer("none").fit(y)
    assert torch.equal(ident.transform(y)[:, 0], y[:, 0])
    with pytest.raises(RuntimeError, match="not fitted"):
        TargetNormalizer().transform(y)
