"""Regenerates sovits_feature_index_tiny.pkl + .npz (needs faiss-cpu; run from the repo root).

The pickle has the layout of so-vits-svc's feature_and_index.pkl: {speaker_id: faiss index},
pickled by faiss's own pickle support (state {"this": serialized bytes}). Speaker 0 is an exact
IndexFlatL2, speaker 1 an "IVF4,Flat" index with nprobe 1 (what so-vits-svc's train_index builds).
The .npz holds the stored vectors, a query c (C, T) and faiss's search results for it.
"""

import pickle
from pathlib import Path

import faiss
import numpy as np

HERE = Path(__file__).parent
rs = np.random.RandomState(7)
v0 = rs.randn(60, 6).astype("float32")
v1 = rs.randn(200, 6).astype("float32")
flat = faiss.IndexFlatL2(6)
flat.add(v0)
ivf = faiss.index_factory(6, "IVF4,Flat")
faiss.extract_index_ivf(ivf).nprobe = 1
ivf.train(v1)
ivf.add(v1)
with open(HERE / "sovits_feature_index_tiny.pkl", "wb") as f:
    pickle.dump({0: flat, 1: ivf}, f)
c = rs.randn(6, 25).astype("float32")
d0, i0 = flat.search(np.ascontiguousarray(c.T), 8)
d1, i1 = ivf.search(np.ascontiguousarray(c.T), 8)
np.savez(HERE / "sovits_feature_index_tiny.npz", v0=v0, v1=v1, c=c, d0=d0, i0=i0, d1=d1, i1=i1)
