"""On-disk cache of SAM image embeddings, one file per slice, bounded in size (LRU).

A slice's key is the SHA-256 of the exact 8-bit, three-channel image SAM sees (so it covers
the channel mapping and the windows), the model (type and checkpoint fingerprint) and the
preprocessing version. The encoder output is a pure function of these, so a case reopened
later, or embedded on a GPU server with ``napari-medseg embed`` and copied to a laptop, needs
no encoder run. Per-slice files also mean a cancelled embedding keeps what it finished.

Each ``<key>.npz`` holds ``embedding`` (float16, C x h x w) and ``meta`` (JSON text: model,
sizes, channel mapping, case). Reading an entry refreshes its mtime, which drives eviction.

``index.txt`` lists the keys the cache wrote; trimming and clearing delete only those (a line
lost to a concurrent rewrite leaves a file untrimmed, never deletes a stranger). A folder that
holds anything else (a dataset, the user's own ``.npz``) is refused as a cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import zipfile
from pathlib import Path

import numpy as np

from napari_medseg.core.atomic import TMP_TAG, atomic_path, write_text
from napari_medseg.core.errors import WriteError
from napari_medseg.engines.sam_settings import cache_limit_bytes, default_cache_dir

PREPROCESS_VERSION = "sam-resize-longest-v1"
INDEX = "index.txt"
ENTRY = re.compile(r"[0-9a-f]{64}\.npz")


def slice_key(image_u8: np.ndarray, model_id: str) -> str:
    """Cache key of one (y, x, 3) uint8 slice for one model."""
    h = hashlib.sha256(f"{PREPROCESS_VERSION}|{model_id}|{image_u8.shape}|".encode())
    h.update(np.ascontiguousarray(image_u8).tobytes())
    return h.hexdigest()


class EmbeddingCache:
    """Embeddings stored under ``root`` (default: the saved or default cache folder)."""

    def __init__(self, root: str | os.PathLike | None = None, max_bytes: int | None = None):
        self.root = Path(root).expanduser() if root else default_cache_dir()
        self.max_bytes = cache_limit_bytes() if max_bytes is None else int(max_bytes)
        self._check_root()

    def _check_root(self) -> None:
        """Refuse a folder holding files the cache did not write; adopt an index-less one that
        holds only cache entries (made before the index existed)."""
        if (self.root / INDEX).is_file() or not self.root.is_dir():
            return
        names = [e.name for e in os.scandir(self.root)]
        stranger = next((n for n in names if not ENTRY.fullmatch(n) and TMP_TAG not in n), None)
        if stranger is not None:
            raise WriteError(
                f"not a napari-medseg embedding cache: it holds {stranger!r}, which the cache did "
                "not write; choose an empty or new folder",
                self.root,
            )
        self._write_index(n[:-4] for n in names if ENTRY.fullmatch(n))

    def _keys(self) -> list[str]:
        try:
            lines = (self.root / INDEX).read_text(encoding="ascii", errors="replace").split()
        except FileNotFoundError:
            return []
        return list(dict.fromkeys(k for k in lines if ENTRY.fullmatch(f"{k}.npz")))

    def _write_index(self, keys) -> None:
        if self.root.is_dir():
            write_text(self.root / INDEX, "".join(f"{k}\n" for k in keys))

    def _path(self, key: str) -> Path:
        return self.root / f"{key}.npz"

    def __contains__(self, key: str) -> bool:
        return self._path(key).is_file()

    def get(self, key: str) -> tuple[np.ndarray, dict] | None:
        """The embedding and metadata stored under ``key``, or None (a corrupt file is dropped)."""
        path = self._path(key)
        try:
            with np.load(path, allow_pickle=False) as data:
                emb, meta = data["embedding"], json.loads(str(data["meta"]))
            os.utime(path)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            path.unlink(missing_ok=True)
            return None
        return emb, meta

    def put(self, key: str, embedding: np.ndarray, meta: dict) -> None:
        if not ENTRY.fullmatch(f"{key}.npz"):
            raise ValueError(f"not a cache key: {key!r}")
        with atomic_path(self._path(key)) as tmp, open(tmp, "wb") as f:
            np.savez(f, embedding=embedding.astype(np.float16), meta=np.asarray(json.dumps(meta)))
        with open(self.root / INDEX, "a", encoding="ascii") as fh:  # one short append: atomic
            fh.write(f"{key}\n")

    def _files(self) -> list[os.DirEntry]:
        """The entries the index lists that are still on disk."""
        keys = set(self._keys())
        try:
            return [e for e in os.scandir(self.root) if e.name[:-4] in keys and e.is_file()]
        except FileNotFoundError:
            return []

    def size_bytes(self) -> int:
        return sum(e.stat().st_size for e in self._files())

    def count(self) -> int:
        return len(self._files())

    def trim(self) -> int:
        """Delete the least recently used entries until the cache fits; return how many."""
        entries = sorted((e.stat().st_mtime, e.stat().st_size, e.path) for e in self._files())
        total = sum(size for _, size, _ in entries)
        removed = 0
        for _, size, path in entries:
            if total <= self.max_bytes:
                break
            Path(path).unlink(missing_ok=True)
            total -= size
            removed += 1
        if removed:
            self._write_index(k for k in self._keys() if self._path(k).is_file())
        return removed

    def clear(self) -> int:
        """Delete every entry; return the bytes freed."""
        freed = 0
        for e in self._files():
            freed += e.stat().st_size
            Path(e.path).unlink(missing_ok=True)
        self._write_index(k for k in self._keys() if self._path(k).is_file())
        return freed

    def describe(self) -> str:
        size, limit = self.size_bytes() / 2**20, self.max_bytes / 2**30
        return f"{self.count()} slices, {size:.1f} MiB of {limit:.1f} GiB"


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
