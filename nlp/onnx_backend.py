"""The bundled MiniLM as a dynamically int8-quantised ONNX model, run by onnxruntime.

Why: embedding was the slow step of ingest (about 5x the rest of it, 50 passages/s on 2 cores).
Dynamic int8 quantisation of the transformer's matrix multiplications does about 2.5x the
work per CPU-second of fp32 torch on an AVX2 CPU, with the same ranking quality; with one
single-threaded call per text on a thread per core it also keeps its speed when other
processes take cores, where torch's OpenMP threads stall (benchmarks/embeddings.py measures
both against the path before it).

Why our own export rather than sentence-transformers' ``backend="onnx"``: that backend needs
``optimum``, whose ONNX half (``optimum-onnx``) pins transformers below 4.58 and would
downgrade the rest of the stack. The export is short: the bundled torch weights are traced with
``torch.onnx.export`` once, quantised with ``onnxruntime.quantization.quantize_dynamic``, and
cached as a file; nothing is ever downloaded. Pooling (attention-masked mean) and L2
normalisation are the model's own sentence-transformers settings, applied here in numpy, and
tokenisation uses the model's ``tokenizer.json`` through ``tokenizers`` — so serving a query
needs neither torch nor transformers in memory.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

__all__ = [
    "OnnxEncoder",
    "export_fp32",
    "onnx_available",
    "quantize_int8",
    "quantized_model_file",
]

#: Bumped whenever the export or quantisation recipe changes, so cached files are rebuilt and
#: stored vectors re-embedded (it is part of the backend's model id).
RECIPE = "int8-v1"
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def onnx_available() -> bool:
    """Whether onnxruntime and onnx are installed (the export also needs torch, always there)."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


def quantized_model_file(model_path: Path, cache_dir: Path, model_id: str) -> Path:
    """The cached int8 model for ``model_path``, exporting it first if it is not there yet.

    Several processes may start at once (server workers, ``kb worker``): an exclusive file lock
    makes one of them export while the others wait, and the file appears by an atomic rename,
    so nobody ever loads half a model.
    """
    target = cache_dir / model_id / f"model-{RECIPE}.onnx"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(target.parent / ".export.lock"):
        if not target.is_file():
            _export(model_path, target)
    return target


@contextlib.contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    with open(lock_file, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _export(model_path: Path, target: Path) -> None:
    """Trace the fp32 transformer to ONNX, quantise its weights to int8, rename into place."""
    log.info("exporting %s to a quantised ONNX model (once)", model_path)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        fp32 = Path(scratch) / "model-fp32.onnx"
        int8 = Path(scratch) / target.name
        export_fp32(model_path, fp32)
        quantize_int8(fp32, int8)
        os.replace(int8, target)


def export_fp32(model_path: Path, out: Path, attn_implementation: str | None = None) -> None:
    """Trace the bundled fp32 transformer to ONNX at ``out`` (inputs: ids, mask, type ids;
    output: the last hidden state), batch and token axes dynamic.

    ``attn_implementation`` is passed to transformers (``"eager"`` exports attention as the
    plain MatMul/Softmax pattern onnxruntime's transformer optimiser can fuse;
    benchmarks/onnx_recipes.py uses it to compare that recipe). The cached model keeps the
    library's default, which onnxruntime fuses at session load anyway.
    """
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    extra = {"attn_implementation": attn_implementation} if attn_implementation else {}
    model = AutoModel.from_pretrained(str(model_path), local_files_only=True, **extra).eval()
    ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]], dtype=torch.long)
    mask = (ids != 0).long()
    with torch.inference_mode(), _quiet_warnings():
        torch.onnx.export(
            _last_hidden_state_module()(model),
            (ids, mask, torch.zeros_like(ids)),
            str(out),
            dynamo=False,
            input_names=list(_INPUTS),
            output_names=["last_hidden_state"],
            dynamic_axes={name: {0: "batch", 1: "tokens"} for name in _INPUTS}
            | {"last_hidden_state": {0: "batch", 1: "tokens"}},
            opset_version=17,
        )


def quantize_int8(fp32: Path, out: Path, **options: Any) -> None:
    """Dynamic int8 quantisation of ``fp32`` into ``out`` with this recipe's settings;
    ``options`` override them (benchmarks/onnx_recipes.py compares the alternatives).

    Per-channel weight scales keep vectors at cosine ~0.99 to fp32 (per-tensor: 0.87); the
    reduced 7-bit range avoids int16 overflow in the u8*s8 kernel on CPUs without VNNI (AVX2).
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    settings: dict[str, Any] = {
        "weight_type": QuantType.QInt8,
        "per_channel": True,
        "reduce_range": True,
    } | options
    # Graphs pre-fused by onnxruntime's transformer optimiser hold contrib ops that shape
    # inference cannot type; their outputs are fp32.
    settings["extra_options"] = {"DefaultTensorType": onnx.TensorProto.FLOAT} | dict(
        settings.get("extra_options") or {}
    )
    with _quiet_warnings():
        quantize_dynamic(str(fp32), str(out), **settings)


@contextlib.contextmanager
def _quiet_warnings() -> Iterator[None]:
    """The exporter and quantiser warn about tracing details that do not apply to BERT."""
    import warnings

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def _last_hidden_state_module() -> Any:
    import torch

    class LastHiddenState(torch.nn.Module):
        """The transformer with positional inputs and one output, as the exporter wants."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state

    return LastHiddenState


def _max_seq_length(model_path: Path) -> int:
    """The model's own truncation length (256 for all-MiniLM-L6-v2)."""
    cfg = model_path / "sentence_bert_config.json"
    if cfg.is_file():
        value = json.loads(cfg.read_text()).get("max_seq_length")
        if isinstance(value, int):
            return value
    return 256


class OnnxEncoder:
    """Tokenise, run the int8 model, mean-pool over real tokens, normalise.

    One onnxruntime session with one intra-op thread, run concurrently from a pool of Python
    threads (onnxruntime releases the GIL): each thread takes the next text from a shared
    queue, longest first, so no core idles while another still has a backlog. Small matrices
    parallelise poorly inside one call, and on shared 2-core machines a query run on one
    thread is steady while a multi-threaded one stalls whenever the other core is busy.
    """

    def __init__(self, model_path: Path, onnx_file: Path) -> None:
        from tokenizers import Tokenizer

        self.onnx_file = onnx_file
        self.max_seq_length = _max_seq_length(model_path)
        self.tokenizer = Tokenizer.from_file(str(model_path / "tokenizer.json"))
        # The same cut as sentence-transformers' (256 word pieces with [CLS] and [SEP]), so
        # long passages keep the same words as under torch and stay comparable.
        self.tokenizer.enable_truncation(max_length=self.max_seq_length)
        self.tokenizer.no_padding()
        self._session: Any = None
        self._lock = threading.Lock()

    def session(self) -> Any:
        """The inference session, made on first use (a web worker that never searches by
        meaning never loads it)."""
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._session = _make_session(self.onnx_file)
        return self._session

    def encode(self, texts: list[str], threads: int, batch_size: int = 1) -> np.ndarray:
        """Vectors in input order.

        ``batch_size`` 1 (the default) runs each text alone, unpadded: int8 activation scales
        are computed per call, so in a shared batch a vector would depend on its batch mates
        (cosine 0.994 to itself alone), and without padding a one-text call costs no more per
        token on a CPU (benchmarks/embeddings.py measures batches of 16 against it). Texts are
        sorted by length, longest first, and cut into groups of ``batch_size`` neighbours, so
        a batch pads little.
        """
        encodings = self.tokenizer.encode_batch(list(texts))
        order = np.argsort([-len(e.ids) for e in encodings], kind="stable")
        size = max(1, batch_size)
        groups = [order[i : i + size] for i in range(0, len(order), size)]
        session = self.session()
        out = np.empty((len(texts), _hidden_size(session)), dtype=np.float32)

        def work(queue: Iterator[np.ndarray]) -> None:
            for group in queue:
                out[group] = self._run(session, [encodings[i] for i in group])

        workers = max(1, min(threads, len(groups)))
        queue = _SharedIterator(iter(groups))
        if workers == 1:
            work(queue)
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                for done in [pool.submit(work, queue) for _ in range(workers)]:
                    done.result()
        return out

    @staticmethod
    def _run(session: Any, encodings: list[Any]) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, enc in enumerate(encodings):
            n = len(enc.ids)
            ids[row, :n] = enc.ids
            mask[row, :n] = enc.attention_mask
            types[row, :n] = enc.type_ids
        (hidden,) = session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        )
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


def _make_session(onnx_file: Path) -> Any:
    """One intra-op thread per session (parallelism comes from our threads), operators run in
    sequence (a BERT layer is a chain: there is nothing to run side by side), and the full
    graph optimisation (layer-norm, GELU and attention fusions) applied at load.

    Fusing the graph beforehand with onnxruntime's transformer optimiser (Attention,
    SkipLayerNormalization, BiasGelu, EmbedLayerNormalization, then QAttention when
    quantised) does no more work per CPU-second than these load-time fusions (80.8 against
    79.7 passages, benchmarks/onnx_recipes.py); it only starts a session faster (35 against
    120 ms) and lowers the worst cosine to fp32 (0.975 against 0.984), so the recipe keeps
    the plain traced graph."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])


def _hidden_size(session: Any) -> int:
    shape = session.get_outputs()[0].shape
    return int(shape[-1]) if isinstance(shape[-1], int) else 384


class _SharedIterator:
    """An iterator several threads may pull from (``next`` under a lock)."""

    def __init__(self, items: Iterator[np.ndarray]) -> None:
        self._items = items
        self._lock = threading.Lock()

    def __iter__(self) -> _SharedIterator:
        return self

    def __next__(self) -> np.ndarray:
        with self._lock:
            return next(self._items)
