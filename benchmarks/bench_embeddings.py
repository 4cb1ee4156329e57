"""Sentence-embedding throughput: texts/s by text length, batch size and torch threads, and the
options tried to go faster (int8 dynamic quantization, ONNX Runtime, truncation at 128 word
pieces), with the vectors' cosine to the default fp32 ones; plus model load time, peak RSS,
and how much embedding slows other work on the machine.

Each variant runs in its own child process, so load time, peak RSS and torch's thread settings
belong to it alone. Texts are seeded random draws of N words from the vocabulary of the
benchmarks' corpus generator (``benchmarks.common.write_corpus``); the load average of the
machine is recorded beside every variant, since other processes share its cores.
The ONNX variants run only where ``onnxruntime`` and ``onnx`` can be imported (they are not
labelloop dependencies); the model is exported from the bundled weights, never downloaded.

Usage: python benchmarks/bench_embeddings.py [--texts 2000] [--variants fp32 int8 ...]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import RESULTS, peak_rss_mb, write_corpus, write_result  # noqa: E402

LENGTHS = (5, 20, 60)
LONG_WORDS = 200  # beyond 128 word pieces: where truncation changes vectors
LONG_TEXTS = 200
BATCHES = (16, 32, 64, 128, 256)
DEFAULT_BATCH = 64
VARIANTS = (
    "fp32", "fp32-1thread", "fp32-interop1", "fp32-passive", "fp32-1thread-passive", "int8",
    "msl128", "onnx", "onnx-1thread", "onnx-int8",
)  # fmt: skip
SWEPT = ("fp32", "fp32-1thread")  # the variants measured at every batch size
# The other work measured alone and beside an embedding pass (see contention()).
PROBE_TEXTS = 4_000
UI_PROBES = 200


def vocabulary() -> list[str]:
    with tempfile.TemporaryDirectory() as folder:
        path = write_corpus(Path(folder) / "corpus.csv", 2_000, seed=3)
        with path.open(encoding="utf-8") as handle:
            words = {word for row in csv.DictReader(handle) for word in row["text"].split()}
    return sorted(words)


def texts_of(n_words: int, count: int, *, seed: int) -> list[str]:
    rng = random.Random(seed)
    words = vocabulary()
    return [" ".join(rng.choices(words, k=n_words)) for _ in range(count)]


def mixed_texts(count: int, *, seed: int) -> list[str]:
    rng = random.Random(seed)
    words = vocabulary()
    return [" ".join(rng.choices(words, k=rng.randint(5, 60))) for _ in range(count)]


def corpora(count: int) -> dict[str, list[str]]:
    sets = {f"{n} words": texts_of(n, count, seed=n) for n in LENGTHS}
    sets["5-60 words"] = mixed_texts(count, seed=1)
    sets[f"{LONG_WORDS} words"] = texts_of(LONG_WORDS, LONG_TEXTS, seed=LONG_WORDS)
    return sets


# --------------------------------------------------------------------------- child: encoders


def torch_encoder(model: Any) -> Callable[[list[str], int], np.ndarray]:
    def encode(texts: list[str], batch_size: int) -> np.ndarray:
        return model.encode(
            texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
        )

    return encode


def onnx_encoder(model: Any, folder: Path, *, threads: int, int8: bool) -> Callable[..., Any]:
    """The bundled weights exported to ONNX here, run by ONNX Runtime: sorted by length,
    padded per batch, mean pooling and L2 norm as the sentence-transformers model does."""
    import onnxruntime  # not a labelloop dependency: only present where installed by hand
    import torch

    transformer = model[0].auto_model.eval()

    class LastHidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, ids: Any, mask: Any, types: Any) -> Any:
            out = self.transformer(input_ids=ids, attention_mask=mask, token_type_ids=types)
            return out.last_hidden_state

    sample = model.tokenizer(["a b", "c d e"], padding=True, return_tensors="pt")
    path = folder / "model.onnx"
    names = ["input_ids", "attention_mask", "token_type_ids"]
    torch.onnx.export(
        LastHidden(),
        tuple(sample[k] for k in names),
        str(path),
        input_names=names,
        output_names=["hidden"],
        dynamic_axes={k: {0: "batch", 1: "tokens"} for k in [*names, "hidden"]},
        opset_version=17,
        dynamo=False,
    )
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(path), str(folder / "int8.onnx"), weight_type=QuantType.QInt8)
        path = folder / "int8.onnx"
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    max_tokens = model.max_seq_length

    def encode(texts: list[str], batch_size: int) -> np.ndarray:
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            chosen = order[start : start + batch_size]
            enc = model.tokenizer(
                [texts[i] for i in chosen],
                padding=True,
                truncation=True,
                max_length=max_tokens,
                return_tensors="np",
            )
            feed = {k: enc[k].astype(np.int64) for k in names}
            hidden = session.run(None, feed)[0]
            mask = enc["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
            out[chosen] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        return out

    return encode


def make_encoder(variant: str, folder: Path) -> tuple[Callable[..., Any], dict[str, Any]]:
    """Load the bundled model and prepare ``variant``; returns the encoder and the facts."""
    import torch

    threads = 1 if "1thread" in variant else 2
    if variant == "fp32-interop1":
        torch.set_num_interop_threads(1)
    started = time.perf_counter()
    from labeling.rounds.embeddings import load_model

    model = load_model()
    torch.set_num_threads(threads)  # after the load, which applies labelloop's own default
    facts: dict[str, Any] = {
        "load_seconds": round(time.perf_counter() - started, 2),
        "rss_after_load_mb": peak_rss_mb(),
        "torch_threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
    }
    started = time.perf_counter()
    if variant == "int8":
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        encoder = torch_encoder(model)
    elif variant.startswith("onnx"):  # the export runs under torch's settings, then ORT's
        encoder = onnx_encoder(model, folder, threads=threads, int8=variant == "onnx-int8")
    else:
        if variant == "msl128":
            model.max_seq_length = 128
        encoder = torch_encoder(model)
    facts["prepare_seconds"] = round(time.perf_counter() - started, 2)
    return encoder, facts


def timed(encode: Callable[..., Any], texts: list[str], batch: int) -> tuple[float, np.ndarray]:
    started = time.perf_counter()
    vectors = np.asarray(encode(texts, batch), dtype=np.float32)
    return len(texts) / (time.perf_counter() - started), vectors


def child(variant: str, count: int, out: Path) -> None:
    """Measure one variant; vectors at the default batch size go to ``out`` for the cosine."""
    encode, facts = make_encoder(variant, out)
    sets = corpora(count)
    if variant == "msl128":  # texts under 128 word pieces are not changed by truncation
        sets = {name: sets[name] for name in ("20 words", f"{LONG_WORDS} words")}
    timed(encode, sets["20 words"][:200], DEFAULT_BATCH)  # warm up
    facts["load_average_before"] = round(os.getloadavg()[0], 1)
    speeds: dict[str, dict[str, float]] = {}
    for name, texts in sets.items():
        speed, vectors = timed(encode, texts, DEFAULT_BATCH)
        speeds[name] = {str(DEFAULT_BATCH): round(speed)}
        np.save(out / f"{variant}-{name.replace(' ', '_')}.npy", vectors)
    if variant == "fp32":
        from labeling.rounds.embeddings import load_model

        tokenizer = load_model().tokenizer
        facts["word_pieces"] = {
            name: round(float(np.mean([len(ids) for ids in tokenizer(texts)["input_ids"]])))
            for name, texts in sets.items()
        }
    if variant in SWEPT:
        for n in LENGTHS:
            for batch in BATCHES:
                if batch != DEFAULT_BATCH:
                    speed, _ = timed(encode, sets[f"{n} words"], batch)
                    speeds[f"{n} words"][str(batch)] = round(speed)
        # Unsorted: batches in the file's order (what sorting by length saves on mixed texts).
        mixed = sets["5-60 words"]
        started = time.perf_counter()
        for start in range(0, len(mixed), DEFAULT_BATCH):
            encode(mixed[start : start + DEFAULT_BATCH], DEFAULT_BATCH)
        speeds["5-60 words"]["unsorted"] = round(len(mixed) / (time.perf_counter() - started))
    facts.update(speeds=speeds, peak_rss_mb=peak_rss_mb())
    facts["load_average_after"] = round(os.getloadavg()[0], 1)
    print(json.dumps(facts))


# --------------------------------------------------------------------------- contention


def round_proxy() -> float:
    """Seconds for a small round's own work: hashing features, train, predict."""
    from labeling.rounds.featurizers import make_featurizer
    from labeling.rounds.learner import DEFAULT_CLASSIFIER, predict_proba, train

    texts = mixed_texts(PROBE_TEXTS, seed=5)
    labels = np.array([len(t) % 5 for t in texts])
    started = time.perf_counter()
    X = make_featurizer("hashing").transform(texts)
    model = train(X[:2_000], labels[:2_000], classifier=DEFAULT_CLASSIFIER)
    predict_proba(model, X)
    return time.perf_counter() - started


def ui_probe() -> dict[str, float]:
    """Latency of a page-sized piece of Python work every 20 ms (p50/p95, ms)."""
    payload = {f"item-{k}": {"text": "x" * 50, "score": k / 7} for k in range(300)}
    latencies = []
    for _ in range(UI_PROBES):
        started = time.perf_counter()
        json.loads(json.dumps(payload))
        latencies.append((time.perf_counter() - started) * 1000)
        time.sleep(0.02)
    latencies.sort()
    return {
        "p50_ms": round(statistics.median(latencies), 2),
        "p95_ms": round(latencies[int(0.95 * len(latencies))], 2),
    }


def contention_child(threads: int) -> None:
    """An embedding pass in a thread (as a worker would run it) beside a round's own work in
    the same process; the parent probes UI latency from another process meanwhile."""
    import torch

    os.nice(10)  # as the round worker does (round_nice)
    from labeling.rounds.embeddings import embed, load_model

    load_model()
    torch.set_num_threads(threads)
    alone = round_proxy()
    texts = texts_of(20, 400, seed=20)
    stop = threading.Event()
    done = [0]

    def embed_loop() -> None:
        while not stop.is_set():
            embed(texts)
            done[0] += len(texts)

    worker = threading.Thread(target=embed_loop)
    started = time.perf_counter()
    worker.start()
    print("ready", flush=True)
    beside = round_proxy()
    while time.perf_counter() - started < 12:
        time.sleep(0.2)
    stop.set()
    worker.join()
    rate = done[0] / (time.perf_counter() - started)
    print(
        json.dumps(
            {
                "round_alone_s": round(alone, 2),
                "round_beside_s": round(beside, 2),
                "texts_per_s_beside": round(rate),
            }
        ),
        flush=True,
    )


def child_env(passive: bool) -> dict[str, str]:
    """The environment of a child; OpenMP's wait policy is read once, when torch loads."""
    env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    return {**env, "OMP_WAIT_POLICY": "PASSIVE"} if passive else env


def contention(run: str) -> dict[str, Any]:
    """``run`` is a thread count, with ``p`` after it for OpenMP's passive wait policy."""
    threads, passive = int(run.rstrip("p")), run.endswith("p")
    command = [sys.executable, __file__, "--contention-child", str(threads)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=child_env(passive))
    assert proc.stdout is not None
    ui_alone = ui_probe()  # while the child loads (mostly import time, one core)
    proc.stdout.readline()  # "ready": the embedding thread runs
    ui_beside = ui_probe()
    out, _ = proc.communicate()
    result = json.loads(out.strip().splitlines()[-1])
    return {
        "torch_threads": threads,
        "omp_wait_policy": "passive" if passive else "default",
        "ui_alone": ui_alone,
        "ui_beside": ui_beside,
        **result,
    }


# --------------------------------------------------------------------------- parent


def run_variant(variant: str, count: int, folder: Path) -> dict[str, Any] | None:
    command = [sys.executable, __file__, "--child", variant, str(folder), "--texts", str(count)]
    env = child_env("passive" in variant)
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode:
        print(f"{variant}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
        return {"variant": variant, "error": done.stderr.strip().splitlines()[-1]}
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return {"variant": variant, "omp_wait_policy": env.get("OMP_WAIT_POLICY", "default"), **found}


def cosines(folder: Path, variant: str, names: list[str]) -> dict[str, dict[str, float]]:
    found = {}
    for name in names:
        key = name.replace(" ", "_")
        base, other = folder / f"fp32-{key}.npy", folder / f"{variant}-{key}.npy"
        if base.exists() and other.exists():
            cos = (np.load(base) * np.load(other)).sum(axis=1)
            found[name] = {"mean": round(float(cos.mean()), 5), "min": round(float(cos.min()), 5)}
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=2_000)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument(
        "--contention", nargs="*", default=["1", "2", "1p", "2p"], help="threads, p: passive"
    )
    parser.add_argument(
        "--merge", action="store_true", help="keep the saved runs of variants not measured now"
    )
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "FOLDER"))
    parser.add_argument("--contention-child", type=int)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.texts, Path(args.child[1]))
        return 0
    if args.contention_child:
        contention_child(args.contention_child)
        return 0
    names = list(corpora(10))
    runs = []
    # fp32 first: the others' vectors are compared with its ones (unless merging runs that
    # need no comparison: thread settings leave the vectors as they are).
    order = [v for v in args.variants if v != "fp32"]
    if "fp32" in args.variants or not args.merge:
        order.insert(0, "fp32")
    with tempfile.TemporaryDirectory() as folder:
        for variant in order:
            print(f"== {variant}", file=sys.stderr, flush=True)
            run = run_variant(variant, args.texts, Path(folder))
            if run and "error" not in run and variant != "fp32" and "fp32" in order:
                run["cosine_to_fp32"] = cosines(Path(folder), variant, names)
            runs.append(run)
    print("== contention", file=sys.stderr, flush=True)
    runs_contention = [contention(run) for run in args.contention]
    saved = RESULTS / "embeddings.json"
    if args.merge and saved.exists():
        before = json.loads(saved.read_text())
        kept = [run for run in before["runs"] if run["variant"] not in order]
        runs = kept + runs
        measured = {(r["torch_threads"], r["omp_wait_policy"]) for r in runs_contention}
        runs_contention = [
            r
            for r in before["contention"]
            if (r["torch_threads"], r.get("omp_wait_policy", "default")) not in measured
        ] + runs_contention
    write_result(
        "embeddings",
        {
            "title": "Sentence embeddings: throughput and the options tried",
            "parameters": {"texts": args.texts, "long_texts": LONG_TEXTS, "batches": BATCHES},
            "runs": runs,
            "contention": runs_contention,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
