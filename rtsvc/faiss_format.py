"""Reading faiss's own serialized index bytes without faiss (flat and IVF-flat indexes only).

so-vits-svc's ``feature_and_index.pkl`` holds faiss indexes whose pickled state is the bytes of
``faiss.serialize_index`` (the same bytes ``faiss.write_index`` writes). Layout, little endian::

    header : fourcc[4] d:int32 ntotal:int64 dummy:int64 dummy:int64 is_trained:uint8 metric:int32
             [metric_arg:float32 if metric > 1]
    "IxF2" / "IxFI" / "IxFl" (flat, L2 / inner product / generic): header, n:uint64, n float32
    "IwFl" (IVF flat): header, nlist:uint64, nprobe:uint64, quantizer (a nested index),
             direct map (type:uint8, n:uint64 + n int64 [, hashtable pairs if type 2]),
             inverted lists "ilar": nlist:uint64 code_size:uint64,
                 "full": n:uint64 + n uint64 list sizes | "sprs": n:uint64 + n uint64 (list, size) pairs,
                 then per non-empty list: size * code_size bytes of codes, size int64 ids

Only what is needed to recover the stored vectors (and the metric) is decoded; anything else is
refused with a clear message.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from rtsvc.errors import ModelFileError

METRIC_INNER_PRODUCT = 0
METRIC_L2 = 1
FLAT_FOURCCS = (b"IxF2", b"IxFI", b"IxFl")
IVF_FLAT_FOURCC = b"IwFl"
DIRECT_MAP_HASHTABLE = 2


@dataclass
class DecodedIndex:
    """Vectors of a flat or IVF-flat index. vectors: (ntotal, d) float32 in id order; metric: METRIC_*."""

    d: int
    metric: int
    vectors: np.ndarray
    kind: str


class _Reader:
    def __init__(self, data: bytes, where: str) -> None:
        self.data = memoryview(data)
        self.pos = 0
        self.where = where

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise ModelFileError(f"{self.where}: the faiss index data is truncated or corrupt.")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def u64(self) -> int:
        return self.unpack("Q")[0]

    def array(self, dtype: str, count: int) -> np.ndarray:
        item = np.dtype(dtype).itemsize
        if count > (len(self.data) - self.pos) // max(item, 1):
            raise ModelFileError(f"{self.where}: the faiss index data is truncated or corrupt.")
        return np.frombuffer(self.take(count * item), dtype=dtype).copy()


def _header(r: _Reader) -> tuple[int, int, int]:
    d, ntotal, _, _, _, metric = r.unpack("iqqqBi")
    if metric > 1:
        r.unpack("f")
    if d <= 0 or ntotal < 0:
        raise ModelFileError(f"{r.where}: the faiss index header is corrupt (d={d}, ntotal={ntotal}).")
    return d, ntotal, metric


def _read_index(r: _Reader) -> DecodedIndex:
    fourcc = bytes(r.take(4))
    if fourcc in FLAT_FOURCCS:
        d, ntotal, metric = _header(r)
        count = r.u64()
        if count != d * ntotal:
            raise ModelFileError(f"{r.where}: flat index holds {count} values, expected {d} x {ntotal}.")
        return DecodedIndex(d, metric, r.array("<f4", count).reshape(ntotal, d), "flat")
    if fourcc == IVF_FLAT_FOURCC:
        return _read_ivf_flat(r)
    raise ModelFileError(
        f"{r.where}: unsupported faiss index type {fourcc!r}; only flat and IVF-flat indexes are read without faiss.",
        "install faiss-cpu (the 'train' extra), or rebuild the index with rtsvc's trainer.")


def _read_ivf_flat(r: _Reader) -> DecodedIndex:
    d, ntotal, metric = _header(r)
    nlist = r.u64()
    r.u64()  # nprobe
    _read_index(r)  # the coarse quantizer: not needed to recover the vectors
    map_type = r.unpack("B")[0]
    r.array("<i8", r.u64())
    if map_type == DIRECT_MAP_HASHTABLE:
        r.array("<i8", 2 * r.u64())
    if bytes(r.take(4)) != b"ilar":
        raise ModelFileError(f"{r.where}: IVF index with non-array inverted lists; not readable without faiss.",
                             "install faiss-cpu (the 'train' extra).")
    if r.u64() != nlist:
        raise ModelFileError(f"{r.where}: inverted list count does not match the index.")
    code_size = r.u64()
    if code_size != 4 * d:
        raise ModelFileError(f"{r.where}: IVF-flat code size {code_size} does not match d={d}.")
    kind = bytes(r.take(4))
    sizes = np.zeros(nlist, dtype=np.int64)
    if kind == b"full":
        n = r.u64()
        sizes[:] = r.array("<u8", n)[:nlist]
    elif kind == b"sprs":
        pairs = r.array("<u8", r.u64()).reshape(-1, 2)
        sizes[pairs[:, 0].astype(np.int64)] = pairs[:, 1]
    else:
        raise ModelFileError(f"{r.where}: unknown inverted list layout {kind!r}.")
    vectors = np.zeros((ntotal, d), dtype=np.float32)
    seen = 0
    for size in sizes:
        if size == 0:
            continue
        codes = r.array("<f4", int(size) * d).reshape(int(size), d)
        ids = r.array("<i8", int(size))
        if ids.min() < 0 or ids.max() >= ntotal:
            raise ModelFileError(f"{r.where}: IVF list ids out of range.")
        vectors[ids] = codes
        seen += int(size)
    if seen != ntotal:
        raise ModelFileError(f"{r.where}: IVF lists hold {seen} vectors, header says {ntotal}.")
    return DecodedIndex(d, metric, vectors, "ivf-flat")


def decode_index(data: bytes, where: str) -> DecodedIndex:
    """Decode ``faiss.serialize_index`` bytes. Raises ModelFileError for anything else."""
    return _read_index(_Reader(bytes(data), where))
