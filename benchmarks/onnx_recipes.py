"""Int8 ONNX recipes for the bundled MiniLM compared: passages per CPU-second and fidelity.

Why: nlp/onnx_backend.py's recipe (``int8-v1``: the traced fp32 graph, ``quantize_dynamic``
with per-channel int8 weights and the reduced range, the session at ``ORT_ENABLE_ALL`` on one
thread) is what every stored vector is made with; changing it re-embeds everything, so a new
recipe has to earn that with a measured gain. This script builds the alternatives from the
same bundled weights (nothing is downloaded) and measures each on one thread, one text per
call, as the backend runs them:

- ``int8-v1``: today's recipe (rebuilt here, identical to the cached file);
- ``fused``: the fp32 graph first fused by onnxruntime's own transformer optimiser
  (``onnxruntime.transformers.optimizer.optimize_model``, model type ``bert``, the head count
  and hidden size from the model's config.json: EmbedLayerNormalization, Attention,
  SkipLayerNormalization, BiasGelu), then quantised the same way (Attention becomes
  QAttention); the export uses eager attention, the pattern the optimiser recognises;
- ``fused, MatMul only``: as ``fused`` with attention and embeddings left in fp32;
- ``fused, MatMulConstBOnly``: ``extra_options={"MatMulConstBOnly": True}``;
- ``fused, per-tensor``: one weight scale per matrix;
- ``fused, full range``: ``reduce_range=False`` (8-bit weights; this CPU's flags decide
  whether the u8*s8 kernel can saturate, printed below);
- ``fused, u8 weights``: ``QUInt8`` weights (the u8*u8 kernel);
- ``fp32``: the traced graph unquantised (reference for the fidelity column).

Each recipe at ``ORT_ENABLE_ALL`` (and ``--levels`` adds ``ORT_ENABLE_EXTENDED``, the
usual choice for a pre-optimised graph). Rows run interleaved over slices of the passages
so bursts of load from other processes hit all alike. Columns: passages per CPU-second of
this process, cosine of the vectors to the fp32 graph's (mean, min), session creation plus
a first call in ms (what a worker pays on its first search), file size.

    .venv/bin/python benchmarks/onnx_recipes.py [--passages 300] [--levels]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.embeddings import demo_passages  # noqa: E402


def build(folder: Path, model_path: Path) -> dict[str, Path]:
    """Every recipe's model file under ``folder``, from the bundled weights."""
    from onnxruntime.quantization import QuantType
    from onnxruntime.transformers.optimizer import optimize_model

    from nlp.onnx_backend import export_fp32, quantize_int8

    config = json.loads((model_path / "config.json").read_text())
    plain, eager, fused = folder / "fp32.onnx", folder / "fp32-eager.onnx", folder / "fused.onnx"
    export_fp32(model_path, plain)
    export_fp32(model_path, eager, attn_implementation="eager")
    optimised = optimize_model(
        str(eager),
        model_type="bert",
        num_heads=int(config["num_attention_heads"]),
        hidden_size=int(config["hidden_size"]),
    )
    counts = optimised.get_fused_operator_statistics()
    print("fused operators:", {op: n for op, n in counts.items() if n})
    optimised.save_model_to_file(str(fused))
    recipes: dict[str, tuple[Path, dict[str, Any]]] = {
        "int8-v1": (plain, {}),
        "fused": (fused, {}),
        "fused, MatMul only": (fused, {"op_types_to_quantize": ["MatMul"]}),
        "fused, MatMulConstBOnly": (fused, {"extra_options": {"MatMulConstBOnly": True}}),
        "fused, per-tensor": (fused, {"per_channel": False}),
        "fused, full range": (fused, {"reduce_range": False}),
        "fused, u8 weights": (fused, {"weight_type": QuantType.QUInt8, "reduce_range": False}),
    }
    files = {}
    for i, (name, (source, options)) in enumerate(recipes.items()):
        files[name] = folder / f"recipe-{i}.onnx"
        quantize_int8(source, files[name], **options)
    return files | {"fp32": plain}


def session(path: Path, level: str) -> Any:
    """A session as nlp/onnx_backend.py makes it, at graph optimisation ``level``."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def embed_one(sess: Any, ids: list[int]) -> np.ndarray:
    """One text, unpadded: mean-pooled and normalised as OnnxEncoder does."""
    row = np.array([ids], dtype=np.int64)
    feeds = {
        "input_ids": row,
        "attention_mask": np.ones_like(row),
        "token_type_ids": np.zeros_like(row),
    }
    (hidden,) = sess.run(None, feeds)
    pooled = hidden[0].mean(axis=0)
    return pooled / np.linalg.norm(pooled)


def startup_ms(path: Path, level: str) -> float:
    """Wall ms to create a session and run a first short text."""
    start = time.perf_counter()
    embed_one(session(path, level), [101, 7592, 2088, 102])
    return 1000 * (time.perf_counter() - start)


def measure(
    rows: list[tuple[str, Callable[[list[int]], np.ndarray]]], encodings: list[list[int]]
) -> list[tuple[np.ndarray, float]]:
    """(vectors, CPU seconds) per row, rows interleaved over slices of ten texts."""
    for _, run in rows:
        for ids in encodings[:5]:
            run(ids)
    vectors = [[] for _ in rows]
    cpu = [0.0] * len(rows)
    for start in range(0, len(encodings), 10):
        part = encodings[start : start + 10]
        for i, (_, run) in enumerate(rows):
            begin = time.process_time()
            vectors[i] += [run(ids) for ids in part]
            cpu[i] += time.process_time() - begin
    return [(np.stack(v), c) for v, c in zip(vectors, cpu, strict=True)]


def cpu_flags() -> str:
    """The int8-relevant instruction sets of this CPU (VNNI decides reduce_range's use)."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    flags = next(
        (line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")),
        [],
    )
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
    return " ".join(f for f in wanted if f in flags) or "none of avx2/avx512/vnni"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=300)
    parser.add_argument("--levels", action="store_true", help="also ORT_ENABLE_EXTENDED")
    args = parser.parse_args(argv)

    from tokenizers import Tokenizer

    from nlp.embeddings import default_model_path
    from nlp.onnx_backend import _max_seq_length

    model_path = default_model_path()
    tokenizer = Tokenizer.from_file(str(model_path / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=_max_seq_length(model_path))
    tokenizer.no_padding()
    texts = demo_passages(args.passages)
    encodings = [e.ids for e in tokenizer.encode_batch(texts)]
    print(
        f"{len(texts)} passages, mean {np.mean([len(e) for e in encodings]):.0f} tokens "
        f"(max {max(len(e) for e in encodings)}); CPU: {cpu_flags()}"
    )
    levels = ["ORT_ENABLE_ALL"] + (["ORT_ENABLE_EXTENDED"] if args.levels else [])
    with tempfile.TemporaryDirectory() as scratch:
        files = build(Path(scratch), model_path)
        print(f"load average before: {Path('/proc/loadavg').read_text().strip()}")
        labels = [(name, level) for name in files for level in levels]
        rows = [
            (f"{name} @{level[11:]}", partial(embed_one, session(files[name], level)))
            for name, level in labels
        ]
        results = measure(rows, encodings)
        reference = results[[label for label, _ in rows].index("fp32 @ALL")][0]
        for (label, _), (name, level), (vectors, cpu) in zip(rows, labels, results, strict=True):
            cosines = (vectors * reference).sum(axis=1)
            print(
                f"{label:36} {len(texts) / cpu:6.1f} /cpu-s  cosine to fp32 mean "
                f"{cosines.mean():.4f} min {cosines.min():.4f}  start "
                f"{startup_ms(files[name], level):5.0f} ms  "
                f"{files[name].stat().st_size / 1e6:5.1f} MB",
                flush=True,
            )
    print(f"load average after: {Path('/proc/loadavg').read_text().strip()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
