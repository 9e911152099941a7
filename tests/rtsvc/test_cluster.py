"""Cluster models and feature indexes: safe reading of so-vits-svc's files, rtsvc's .npz, the mix."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import rtsvc.cluster as cluster
from rtsvc.cluster import (ClusterModel, FeatureIndexSet, load_cluster_model, load_feature_index,
                           load_feature_model, mix_features, save_feature_index, save_kmeans)
from rtsvc.errors import ModelFileError, ParameterError

DATA = Path(__file__).parent / "data"


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def _sovits_kmeans(path: Path, centers: dict[str, np.ndarray]) -> Path:
    """The layout so-vits-svc's cluster/train_cluster.py writes."""
    torch.save({spk: {"n_features_in_": c.shape[1], "_n_threads": 2, "cluster_centers_": c}
                for spk, c in centers.items()}, path)
    return path


def test_kmeans_pt_loads_with_weights_only_and_mixes_to_nearest_centre(tmp_path):
    rs = np.random.default_rng(0)
    centers = rs.standard_normal((5, 4)).astype(np.float32)
    p = _sovits_kmeans(tmp_path / "kmeans_10000.pt", {"alto": centers, "tenor": centers * 2})
    loaded = load_cluster_model(p)
    assert set(loaded) == {"alto", "tenor"} and np.array_equal(loaded["alto"], centers)
    model = load_feature_model(p, feature_retrieval=False)
    pick = np.array([3, 0, 4, 4, 1, 2])
    c = (centers[pick] + 0.01 * rs.standard_normal((6, 4))).T.astype(np.float32)  # (C, T) near known centres
    np.testing.assert_allclose(mix_features(model, c, "alto", 1.0), centers[pick].T, atol=1e-6)
    assert mix_features(model, c, "alto", 0.0) is c
    half = mix_features(model, c, "alto", 0.5)
    np.testing.assert_allclose(half, 0.5 * centers[pick].T + 0.5 * c, atol=1e-6)
    assert not np.allclose(mix_features(model, c, "tenor", 1.0), mix_features(model, c, "alto", 1.0))


def test_arbitrary_pickles_in_pt_and_pkl_are_refused(tmp_path):
    pt = tmp_path / "kmeans_10000.pt"
    torch.save({"alto": {"cluster_centers_": _Evil()}}, pt)
    with pytest.raises(ModelFileError, match="not a loadable so-vits-svc cluster model"):
        load_cluster_model(pt)
    pkl = tmp_path / "feature_and_index.pkl"
    pkl.write_bytes(pickle.dumps({0: _Evil()}))
    with pytest.raises(ModelFileError, match="refusing to load posix.system"):
        load_feature_index(pkl)
    other = tmp_path / "other.pkl"
    other.write_bytes(pickle.dumps({0: [1, 2, 3]}))
    with pytest.raises(ModelFileError, match="speaker id -> faiss index"):
        load_feature_index(other)


def test_sovits_feature_index_pkl_reads_with_and_without_faiss(monkeypatch):
    ref = np.load(DATA / "sovits_feature_index_tiny.npz")
    monkeypatch.setattr(cluster, "_faiss_or_none", lambda: None)  # the pure NumPy path
    idx = load_feature_index(DATA / "sovits_feature_index_tiny.pkl")
    assert np.array_equal(idx.indexes[0].vectors, ref["v0"]) and np.array_equal(idx.indexes[1].vectors, ref["v1"])
    d, i = idx.indexes[0].search(np.ascontiguousarray(ref["c"].T), 8)  # exact flat index: same as faiss
    assert np.array_equal(i, ref["i0"])
    np.testing.assert_allclose(d, ref["d0"], rtol=1e-4, atol=1e-4)
    # the mix: 1/D^2-weighted mean of the 8 neighbours (D = squared L2, as faiss reports)
    w = (1.0 / ref["d0"].astype(np.float64)) ** 2
    w /= w.sum(1, keepdims=True)
    want = (ref["v0"][ref["i0"]] * w[:, :, None]).sum(1).T
    np.testing.assert_allclose(idx.mix_features(ref["c"], 0, 1.0), want, atol=1e-4)
    np.testing.assert_allclose(idx.mix_features(ref["c"], "0", 0.25), 0.25 * want + 0.75 * ref["c"], atol=1e-4)
    with pytest.raises(ParameterError, match="no entry for speaker 'alto'"):
        idx.mix_features(ref["c"], "alto", 0.5)


def test_sovits_ivf_index_searches_like_faiss_when_faiss_is_installed():
    faiss = cluster._faiss_or_none()
    if faiss is None:
        msg = "faiss-cpu (the 'train' extra) is not installed; the NumPy path is tested above"
        if os.environ.get("CI"):
            pytest.fail(msg)  # make test installs the train extra: a missing faiss is a setup bug
        pytest.skip(msg)
    ref = np.load(DATA / "sovits_feature_index_tiny.npz")
    idx = load_feature_index(DATA / "sovits_feature_index_tiny.pkl")
    d, i = idx.indexes[1].search(np.ascontiguousarray(ref["c"].T), 8)  # approximate (nprobe 1), like so-vits-svc
    assert np.array_equal(i, ref["i1"])


def test_truncated_faiss_bytes_are_a_clear_error(tmp_path):
    raw = (DATA / "sovits_feature_index_tiny.pkl").read_bytes()
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ModelFileError):
        load_feature_index(cut)


def test_rtsvc_npz_formats_round_trip_and_kind_is_checked(tmp_path):
    rs = np.random.default_rng(3)
    km = save_kmeans(tmp_path / "kmeans.npz", {"alto": rs.standard_normal((4, 3)), "x/y": rs.standard_normal((2, 3))})
    model = load_feature_model(km)
    assert isinstance(model, ClusterModel) and model.centers["x/y"].dtype == np.float32
    vecs = rs.standard_normal((30, 3)).astype(np.float32)
    ix = save_feature_index(tmp_path / "feature_index.npz", {"alto": vecs})
    fi = load_feature_model(ix)
    assert isinstance(fi, FeatureIndexSet)
    c = rs.standard_normal((3, 9)).astype(np.float32)
    assert not np.allclose(fi.mix_features(c, "alto", 1.0), c)  # ratio 1 replaces the features
    with pytest.raises(ModelFileError, match="feature index .* was expected"):
        load_feature_model(km, feature_retrieval=True)
    with pytest.raises(ModelFileError, match="cluster model .* was expected"):
        load_feature_model(ix, feature_retrieval=False)
    junk = tmp_path / "junk.npz"
    np.savez(junk, a=np.zeros(2))
    with pytest.raises(ModelFileError, match="not an rtsvc cluster/index file"):
        load_feature_model(junk)
    with pytest.raises(ModelFileError, match="not found"):
        load_feature_model(tmp_path / "missing.pt")
