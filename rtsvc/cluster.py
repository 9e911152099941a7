"""Cluster (k-means) models and feature-retrieval indexes, read safely, and the feature mix.

Both pull content features towards the target speaker's training features, by ``ratio``::

    c: (C, T) content features of one clip
    cluster : c' = ratio * centers[nearest centre of each frame].T + (1 - ratio) * c
    index   : D, I = 8 nearest stored vectors of each frame (D = squared L2, as faiss reports it)
              w = (1 / D) ** 2, normalised per frame; c' = ratio * (sum_k w_k v_{I_k}).T + (1 - ratio) * c

Files read:

- so-vits-svc ``kmeans_10000.pt``: ``torch.save({speaker: {"n_features_in_": int, "_n_threads": int,
  "cluster_centers_": ndarray (K, C)}})``, loaded with ``weights_only=True`` and only numpy's array
  reconstruction allowlisted.
- so-vits-svc ``feature_and_index.pkl``: a pickle of ``{speaker_id: faiss index}`` whose index
  state is ``{"this": faiss serialized bytes}``. A restricted unpickler admits only faiss index
  classes (as inert placeholders), so nothing runs while reading; the bytes are then decoded by
  faiss if installed, else by :mod:`rtsvc.faiss_format`.
- rtsvc's own ``.npz`` (written by :func:`save_kmeans` / :func:`save_feature_index`, read with
  ``allow_pickle=False``).
"""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

import numpy as np

from rtsvc.errors import ModelFileError, ParameterError
from rtsvc.faiss_format import METRIC_L2, decode_index

#: Neighbours blended by feature retrieval (so-vits-svc uses 8).
RETRIEVAL_NEIGHBOURS = 8
#: Smallest distance used in 1/D^2 (an exact match would otherwise divide by zero).
MIN_DISTANCE = 1e-12
NPZ_FORMAT_KEY = "rtsvc_format"
KMEANS_FORMAT = "kmeans-v1"
INDEX_FORMAT = "feature-index-v1"
#: Modules the faiss index classes live in (depends on the CPU build faiss picked).
FAISS_MODULES = ("faiss", "faiss.swigfaiss", "faiss.swigfaiss_avx2", "faiss.swigfaiss_avx512",
                 "faiss.swigfaiss_avx512_spr", "faiss.swigfaiss_sve")
FAISS_INDEX_CLASSES = ("IndexFlat", "IndexFlatL2", "IndexFlatIP", "IndexIVFFlat")


def _lookup(table: dict, speaker: str | int, what: str, path: str):
    for key in (speaker, str(speaker)):
        if key in table:
            return table[key]
    if isinstance(speaker, str) and speaker.lstrip("-").isdigit() and int(speaker) in table:
        return table[int(speaker)]
    raise ParameterError(f"{path}: the {what} has no entry for speaker {speaker!r}; it has {', '.join(map(str, table))}.",
                         "pick one of those speakers or use the file trained for this one.")


class ClusterModel:
    """k-means centres per speaker. centers[speaker]: (K, C) float32."""

    kind = "cluster"

    def __init__(self, centers: dict[str, np.ndarray], path: str = "<memory>") -> None:
        self.centers = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in centers.items()}
        self.path = path

    def mix_features(self, c: np.ndarray, speaker: str | int, ratio: float) -> np.ndarray:
        """c: (C, T) float32 -> (C, T) float32 pulled towards the nearest centres by ``ratio``."""
        if ratio <= 0:
            return c
        centers = _lookup(self.centers, speaker, "cluster model", self.path)
        x = np.asarray(c, dtype=np.float32).T
        if x.shape[1] != centers.shape[1]:
            raise ModelFileError(f"{self.path}: cluster centres have {centers.shape[1]} dims, features have {x.shape[1]}.")
        d2 = (x * x).sum(1, keepdims=True) - 2.0 * x @ centers.T + (centers * centers).sum(1)[None, :]
        nearest = centers[np.argmin(d2, axis=1)]
        return (ratio * nearest + (1.0 - ratio) * x).T.astype(np.float32)


class FeatureIndex:
    """Stored training features of one speaker. vectors: (N, C) float32. ``faiss_index``: optional
    faiss object used for search when faiss is installed (so-vits-svc's IVF indexes search
    approximately with nprobe 1; the NumPy fallback searches exactly)."""

    def __init__(self, vectors: np.ndarray, faiss_index=None) -> None:
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.faiss_index = faiss_index

    def search(self, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """x: (T, C) -> (squared L2 distances (T, k) float32, ids (T, k) int64), nearest first."""
        k = min(k, len(self.vectors))
        if self.faiss_index is not None:
            return self.faiss_index.search(np.ascontiguousarray(x, dtype=np.float32), k)
        v = self.vectors
        d2 = (x * x).sum(1, keepdims=True) - 2.0 * x @ v.T + (v * v).sum(1)[None, :]
        d2 = np.maximum(d2, 0.0)
        part = np.argpartition(d2, k - 1, axis=1)[:, :k] if k < v.shape[0] else np.tile(np.arange(v.shape[0]), (len(x), 1))
        dist = np.take_along_axis(d2, part, axis=1)
        order = np.argsort(dist, axis=1, kind="stable")
        return np.take_along_axis(dist, order, 1).astype(np.float32), np.take_along_axis(part, order, 1).astype(np.int64)


class FeatureIndexSet:
    """Feature-retrieval indexes per speaker (names or so-vits-svc integer ids as keys)."""

    kind = "index"

    def __init__(self, indexes: dict, path: str = "<memory>") -> None:
        self.indexes = indexes
        self.path = path

    def mix_features(self, c: np.ndarray, speaker: str | int, ratio: float) -> np.ndarray:
        """c: (C, T) float32 -> (C, T) float32 blended with the 1/D^2-weighted 8 nearest stored vectors."""
        if ratio <= 0:
            return c
        index: FeatureIndex = _lookup(self.indexes, speaker, "feature index", self.path)
        x = np.ascontiguousarray(np.asarray(c, dtype=np.float32).T)
        if x.shape[1] != index.vectors.shape[1]:
            raise ModelFileError(f"{self.path}: index vectors have {index.vectors.shape[1]} dims, features have {x.shape[1]}.")
        dist, ids = index.search(x, RETRIEVAL_NEIGHBOURS)
        weight = np.square(1.0 / np.maximum(dist.astype(np.float64), MIN_DISTANCE))
        weight[ids < 0] = 0.0
        weight /= weight.sum(axis=1, keepdims=True)
        retrieved = (index.vectors[np.maximum(ids, 0)] * weight[:, :, None]).sum(axis=1)
        return (ratio * retrieved + (1.0 - ratio) * x).T.astype(np.float32)


def mix_features(model: ClusterModel | FeatureIndexSet, c: np.ndarray, speaker: str | int, ratio: float) -> np.ndarray:
    """so-vits-svc's cluster / feature-retrieval mix. c: (C, T) -> (C, T) float32."""
    return model.mix_features(c, speaker, ratio)


# -- rtsvc's own formats ----------------------------------------------------------------------
def _save_npz(path: str | Path, fmt: str, arrays: dict[str, np.ndarray]) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    names = list(arrays)
    payload = {f"array_{i}": np.ascontiguousarray(arrays[n], dtype=np.float32) for i, n in enumerate(names)}
    payload[NPZ_FORMAT_KEY] = np.array(json.dumps({"format": fmt, "speakers": names}))
    with open(p, "wb") as fh:
        np.savez(fh, **payload)
    return p


def save_kmeans(path: str | Path, centers: dict[str, np.ndarray]) -> Path:
    """Write {speaker: centres (K, C) float32} as an rtsvc cluster model (.npz)."""
    for name, arr in centers.items():
        if np.ndim(arr) != 2:
            raise ParameterError(f"cluster centres of {name!r} must be (K, C), got shape {np.shape(arr)}.")
    return _save_npz(path, KMEANS_FORMAT, centers)


def save_feature_index(path: str | Path, vectors: dict[str, np.ndarray]) -> Path:
    """Write {speaker: training features (N, C) float32} as an rtsvc feature index (.npz)."""
    for name, arr in vectors.items():
        if np.ndim(arr) != 2 or len(arr) == 0:
            raise ParameterError(f"index vectors of {name!r} must be a non-empty (N, C) array, got shape {np.shape(arr)}.")
    return _save_npz(path, INDEX_FORMAT, vectors)


def _load_npz(path: Path) -> tuple[str, dict[str, np.ndarray]]:
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z[NPZ_FORMAT_KEY]))
            arrays = {name: z[f"array_{i}"] for i, name in enumerate(meta["speakers"])}
    except (KeyError, ValueError, OSError, json.JSONDecodeError, TypeError) as exc:
        raise ModelFileError(f"{path}: not an rtsvc cluster/index file ({exc.__class__.__name__}).",
                             "give a file written by rtsvc train, kmeans_10000.pt or feature_and_index.pkl.") from None
    return meta.get("format", ""), arrays


# -- so-vits-svc formats ------------------------------------------------------------------------
def _load_sovits_kmeans(path: Path) -> dict[str, np.ndarray]:
    import torch

    reconstruct = np._core.multiarray._reconstruct if hasattr(np, "_core") else np.core.multiarray._reconstruct
    allow = [np.ndarray, np.dtype, reconstruct, (reconstruct, "numpy.core.multiarray._reconstruct")]
    allow += [type(np.dtype(t)) for t in ("float32", "float64", "int64", "int32")]
    try:
        with torch.serialization.safe_globals(allow):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError / RuntimeError with long texts
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else exc.__class__.__name__
        raise ModelFileError(f"{path}: not a loadable so-vits-svc cluster model ({first}).",
                             "give kmeans_10000.pt from so-vits-svc's cluster/train_cluster.py.") from None
    if not isinstance(ckpt, dict) or not ckpt:
        raise ModelFileError(f"{path}: expected a dict of speaker -> k-means state, got {type(ckpt).__name__}.")
    centers = {}
    for spk, state in ckpt.items():
        arr = state.get("cluster_centers_") if isinstance(state, dict) else None
        if arr is None:
            raise ModelFileError(f"{path}: speaker {spk!r} has no 'cluster_centers_'.")
        arr = arr.numpy() if isinstance(arr, torch.Tensor) else np.asarray(arr)
        if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.floating):
            raise ModelFileError(f"{path}: cluster_centers_ of {spk!r} must be a 2-D float array, got {arr.shape} {arr.dtype}.")
        centers[str(spk)] = arr.astype(np.float32)
    return centers


class _FaissIndexPlaceholder:
    """Stands in for a faiss index class while unpickling; keeps only the serialized bytes."""

    def __setstate__(self, state) -> None:
        if not isinstance(state, dict) or not isinstance(state.get("this"), (bytes, bytearray)):
            raise pickle.UnpicklingError("faiss index state is not {'this': bytes}")
        self.data = bytes(state["this"])


class _IndexUnpickler(pickle.Unpickler):
    """Admits only faiss index classes (as placeholders) plus plain containers and numbers."""

    def find_class(self, module: str, name: str):
        if module in FAISS_MODULES and name in FAISS_INDEX_CLASSES:
            return _FaissIndexPlaceholder
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _faiss_or_none():
    try:
        import faiss  # noqa: PLC0415 - optional ('train' extra)
    except ImportError:
        return None
    return faiss


def _load_sovits_index(path: Path) -> dict:
    try:
        raw = _IndexUnpickler(io.BytesIO(path.read_bytes())).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise ModelFileError(f"{path}: refused or unreadable feature index pickle ({exc}).",
                             "only so-vits-svc's feature_and_index.pkl (faiss indexes) is accepted.") from None
    if not isinstance(raw, dict) or not raw or not all(isinstance(v, _FaissIndexPlaceholder) for v in raw.values()):
        raise ModelFileError(f"{path}: expected a dict of speaker id -> faiss index.")
    faiss = _faiss_or_none()
    out = {}
    for spk, holder in raw.items():
        decoded = decode_index(holder.data, f"{path} (speaker {spk})")
        if decoded.metric != METRIC_L2:
            raise ModelFileError(f"{path}: speaker {spk} index uses inner product, expected L2 distances.")
        live = faiss.deserialize_index(np.frombuffer(holder.data, dtype=np.uint8)) if faiss else None
        out[spk] = FeatureIndex(decoded.vectors, live)
    return out


def _index_from_vectors(vectors: dict[str, np.ndarray]) -> dict[str, FeatureIndex]:
    faiss = _faiss_or_none()
    out = {}
    for name, v in vectors.items():
        live = None
        if faiss is not None:
            live = faiss.IndexFlatL2(v.shape[1])
            live.add(np.ascontiguousarray(v, dtype=np.float32))
        out[name] = FeatureIndex(v, live)
    return out


def load_cluster_model(path: str | Path) -> dict[str, np.ndarray]:
    """{speaker: centres (K, C) float32} from kmeans_10000.pt or an rtsvc .npz."""
    model = load_feature_model(path, feature_retrieval=False)
    assert isinstance(model, ClusterModel)
    return model.centers


def load_feature_index(path: str | Path) -> FeatureIndexSet:
    """Feature-retrieval indexes from feature_and_index.pkl or an rtsvc .npz."""
    model = load_feature_model(path, feature_retrieval=True)
    assert isinstance(model, FeatureIndexSet)
    return model


def load_feature_model(path: str | Path, feature_retrieval: bool | None = None,
                       speakers: tuple[str, ...] | None = None) -> ClusterModel | FeatureIndexSet:
    """Open a cluster model or feature index by its content. ``feature_retrieval`` (so-vits-svc's
    ``-fr``) states which one is expected; None accepts either. ``speakers`` (the voice's names in
    id order) also files so-vits-svc's integer-keyed index entries under their names."""
    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"{p}: cluster model / feature index not found.",
                             "give kmeans_10000.pt, feature_and_index.pkl or an rtsvc .npz with -cm.")
    head = p.read_bytes()[:4]
    if head == b"PK\x03\x04" and p.suffix.lower() == ".npz":
        fmt, arrays = _load_npz(p)
        if fmt == KMEANS_FORMAT:
            model: ClusterModel | FeatureIndexSet = ClusterModel(arrays, str(p))
        elif fmt == INDEX_FORMAT:
            model = FeatureIndexSet(_index_from_vectors(arrays), str(p))
        else:
            raise ModelFileError(f"{p}: unknown rtsvc format {fmt!r}.")
    elif head == b"PK\x03\x04":
        model = ClusterModel(_load_sovits_kmeans(p), str(p))
    elif head[:1] == b"\x80":
        model = FeatureIndexSet(_load_sovits_index(p), str(p))
    else:
        raise ModelFileError(f"{p}: neither a cluster model nor a feature index.",
                             "give kmeans_10000.pt, feature_and_index.pkl or an rtsvc .npz.")
    if speakers and isinstance(model, FeatureIndexSet):
        for key in [k for k in model.indexes if isinstance(k, int) and 0 <= k < len(speakers)]:
            model.indexes.setdefault(speakers[key], model.indexes[key])
    if feature_retrieval is not None and (model.kind == "index") != feature_retrieval:
        want = "a feature index (feature_and_index.pkl)" if feature_retrieval else "a cluster model (kmeans_10000.pt)"
        raise ModelFileError(f"{p}: is a {model.kind} file but {want} was expected.",
                             "drop -fr for cluster models, add -fr for feature indexes.")
    return model
