"""Embedding cache (LRU bound, clear, corrupt entries), settings file, mask pasting and undo."""

from __future__ import annotations

import os

import numpy as np
import pytest

from napari_medseg.engines.sam_cache import EmbeddingCache, slice_key
from napari_medseg.engines.sam_edit import paste, paste_slices
from napari_medseg.engines.sam_settings import (
    default_cache_dir,
    load_settings,
    save_settings,
    settings_path,
)


def entry(cache, i, t):
    key = slice_key(np.full((8, 8, 3), i, np.uint8), "m")
    cache.put(key, np.full((4, 16, 16), i, np.float32), {"slice": i})
    os.utime(cache.root / f"{key}.npz", (t, t))
    return key


def test_cache_round_trip_and_lru_eviction(tmp_path):
    cache = EmbeddingCache(tmp_path / "c", max_bytes=10**9)
    keys = [entry(cache, i, 1000 + i) for i in range(4)]
    emb, meta = cache.get(keys[0])  # refreshes the oldest entry
    assert emb.dtype == np.float16 and emb.shape == (4, 16, 16) and meta == {"slice": 0}
    one = cache.size_bytes() // 4
    cache.max_bytes = 2 * one
    assert cache.trim() == 2
    assert keys[0] in cache and keys[3] in cache
    assert keys[1] not in cache and keys[2] not in cache
    assert cache.clear() == 2 * one and cache.count() == 0
    assert "0 slices" in cache.describe()


def test_corrupt_entry_is_dropped(tmp_path):
    cache = EmbeddingCache(tmp_path / "c")
    key = entry(cache, 1, 1000)
    (cache.root / f"{key}.npz").write_bytes(b"garbage")
    assert cache.get(key) is None and key not in cache
    assert cache.get("0" * 64) is None


def test_keys_depend_on_content_and_model():
    img = np.zeros((8, 8, 3), np.uint8)
    other = img.copy()
    other[0, 0, 0] = 1
    assert slice_key(img, "a") == slice_key(img.copy(), "a")
    assert len({slice_key(img, "a"), slice_key(img, "b"), slice_key(other, "a")}) == 3


def test_settings_persist_in_the_redirected_folder(sam_home):
    assert settings_path().is_relative_to(sam_home)
    assert load_settings() == {}
    save_settings(sam_checkpoint="/models/sam.pth", other=1)
    save_settings(sam_device="cpu", other=None)
    assert load_settings() == {"sam_checkpoint": "/models/sam.pth", "sam_device": "cpu"}
    assert default_cache_dir() == sam_home / "sam-cache"
    settings_path().write_text("{broken")
    assert load_settings() == {}


def test_paste_keeps_other_labels_and_undo_restores():
    labels = np.zeros((3, 6, 6), np.uint8)
    labels[1, :, :2] = 2
    before = labels.copy()
    mask = np.zeros((6, 6), bool)
    mask[1:4, 1:4] = True
    edit = paste(labels, mask, 1, z=1)
    assert (labels[1, 1:4, 1] == 2).all() and (labels[1, 1:4, 2:4] == 1).all()
    assert edit.size == 6
    edit.undo(labels)
    np.testing.assert_array_equal(labels, before)
    edit = paste(labels, mask, 1, z=1, overwrite=True)
    assert (labels[1, 1:4, 1:4] == 1).all()
    edit.undo(labels)
    np.testing.assert_array_equal(labels, before)
    edit = paste_slices(labels, {0: mask, 2: mask}, 3)
    assert (labels[[0, 2]] == 3).sum() == 18 and edit.size == 18
    edit.undo(labels)
    np.testing.assert_array_equal(labels, before)


@pytest.mark.parametrize("shape", [(6, 6)])
def test_paste_into_a_2d_label_image(shape):
    labels = np.zeros(shape, np.uint16)
    mask = np.ones(shape, bool)
    paste(labels, mask, 5)
    assert (labels == 5).all()
