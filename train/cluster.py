"""Stages 5 and 6, ``cluster`` and ``index``: per-speaker k-means centres and feature-retrieval
vectors over the cached content features, saved in rtsvc's safe .npz formats
(:func:`rtsvc.cluster.save_kmeans`, :func:`rtsvc.cluster.save_feature_index`), which
``rtsvc render`` / the live engine read for ``cluster_ratio``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from rtsvc.errors import RtsvcError

from .features import cache_path

#: so-vits-svc's default number of k-means centres per speaker.
DEFAULT_CLUSTERS = 10000
#: MiniBatchKMeans settings (so-vits-svc's values).
KMEANS_BATCH = 4096
KMEANS_MAX_ITER = 80


def speaker_features(dataset_dir: Path, log: Callable[[str], None] = print) -> dict[str, np.ndarray]:
    """{speaker: (frames, dim) float32} from every ``<clip>.wav.soft.npy`` under ``dataset_dir/<speaker>/``."""
    out: dict[str, np.ndarray] = {}
    if not dataset_dir.is_dir():
        raise RtsvcError(f"{dataset_dir}: no such folder; expected the prepared dataset.", "run 'rtsvc train prepare' first.")
    for spk_dir in sorted(d for d in dataset_dir.iterdir() if d.is_dir()):
        feats = [np.load(cache_path(c, "soft"), allow_pickle=False).T for c in sorted(spk_dir.glob("*.wav"))
                 if cache_path(c, "soft").is_file()]
        if feats:
            out[spk_dir.name] = np.ascontiguousarray(np.concatenate(feats, axis=0), dtype=np.float32)
        else:
            log(f"{spk_dir.name}: no content features; speaker left out")
    if not out:
        raise RtsvcError(f"{dataset_dir}: no content features found.", "run 'rtsvc train features' first.")
    return out


def kmeans_centres(features: np.ndarray, n_clusters: int, seed: int = 0, use_gpu: bool = False) -> np.ndarray:
    """(K, dim) float32 centres of ``features`` (N, dim); K = min(n_clusters, N).
    scikit-learn MiniBatchKMeans when installed (CPU); faiss k-means otherwise or with ``use_gpu``."""
    k = min(n_clusters, len(features))
    try:
        if use_gpu:
            raise ImportError
        from sklearn.cluster import MiniBatchKMeans
    except ImportError:
        try:
            import faiss
        except ImportError:
            raise RtsvcError("k-means needs scikit-learn or faiss, neither is installed.", "pip install 'rtsvc[train]'.") from None
        km = faiss.Kmeans(features.shape[1], k, niter=KMEANS_MAX_ITER // 4, seed=seed, gpu=use_gpu)
        km.train(features)
        return np.asarray(km.centroids, dtype=np.float32)
    km = MiniBatchKMeans(n_clusters=k, batch_size=KMEANS_BATCH, max_iter=KMEANS_MAX_ITER, random_state=seed, n_init=3)
    km.fit(features)
    return km.cluster_centers_.astype(np.float32)


def train_cluster(dataset_dir: Path, out_path: Path, n_clusters: int = DEFAULT_CLUSTERS, use_gpu: bool = False,
                  log: Callable[[str], None] = print) -> Path:
    """Fit k-means per speaker and save ``out_path`` (.npz, read by rtsvc.cluster.load_cluster_model)."""
    from rtsvc.cluster import save_kmeans

    centres = {}
    for spk, feats in speaker_features(dataset_dir, log).items():
        centres[spk] = kmeans_centres(feats, n_clusters, use_gpu=use_gpu)
        log(f"cluster: {spk}: {len(feats)} frames -> {len(centres[spk])} centres")
    return save_kmeans(out_path, centres)


def train_index(dataset_dir: Path, out_path: Path, log: Callable[[str], None] = print) -> Path:
    """Save the per-speaker feature-retrieval vectors (.npz, read by rtsvc.cluster.load_feature_index)."""
    from rtsvc.cluster import save_feature_index

    vectors = speaker_features(dataset_dir, log)
    for spk, v in vectors.items():
        log(f"index: {spk}: {len(v)} vectors of {v.shape[1]} dims")
    return save_feature_index(out_path, vectors)
