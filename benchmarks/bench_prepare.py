"""`gpt2 prepare` throughput and memory, next to raw tiktoken encoding of the same text.

Synthetic documents (~5 KB, like WebText's average) made of random runs of 5-20 consecutive words
of the bundled demo corpus: English-like, every document distinct. Measured in one process, in turn:

  * raw tiktoken encode_ordinary, one thread and encode_ordinary_batch on all cores (the limit);
  * prepare end to end (read JSONL, clean, quality rules, tokenize in worker processes, write
    shards) with de-duplication off, and with exact + MinHash near-duplicate removal on;
  * MinHash signatures: ours (numpy, whole matrix) vs datasketch.MinHash fed the same shingles.

Issue target: prepare with dedup off >= 0.6x the raw tiktoken rate (the faster of one thread and
all cores).
--rss-gb N writes an N GB JSONL file and reports the peak RSS of prepare's whole process tree
(target: under 2 GB for 5 GB of input).

    python benchmarks/bench_prepare.py               # 40 MB of text
    python benchmarks/bench_prepare.py --mb 200
    python benchmarks/bench_prepare.py --rss-gb 5 --skip-throughput
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine  # noqa: E402


def corpus_words() -> list[str]:
    from gpt2.data.corpus import corpus_path

    with lzma.open(corpus_path("demo"), "rt", encoding="utf-8") as f:
        return " ".join(json.loads(line)["text"] for line in f).split(" ")


def synthetic_docs(words: list[str], seed: int, doc_chars: int = 5000):
    rng = random.Random(seed)
    n = len(words)
    while True:
        parts, size = [], 0
        while size < doc_chars:
            start = rng.randrange(n - 20)
            run = " ".join(words[start:start + rng.randint(5, 20)])
            parts.append(run)
            size += len(run) + 1
        yield " ".join(parts)


def write_jsonl(path: Path, total_bytes: int, seed: int = 0) -> int:
    words = corpus_words()
    written = 0
    with open(path, "w", encoding="utf-8") as f:
        for doc in synthetic_docs(words, seed):
            line = json.dumps({"text": doc}) + "\n"
            f.write(line)
            written += len(line)
            if written >= total_bytes:
                break
    return written


def text_bytes(path: Path) -> tuple[list[str], int]:
    with open(path, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    return texts, sum(len(t.encode()) for t in texts)


def run_prepare(src: Path, out: Path, *flags: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gpt2.cli.main", "prepare", str(src), "-o", str(out), "-q",
                    "--overwrite", *flags], check=True)
    return time.perf_counter() - start


def peak_tree_rss(cmd: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in bytes summed over the process and its children, sampled every 0.2 s)."""
    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen(cmd)
    parent = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            procs = [parent, *parent.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in procs if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.2)
    if proc.returncode:
        raise SystemExit(f"prepare failed with exit code {proc.returncode}")
    return time.perf_counter() - start, peak


def throughput(mb: float, tmp: Path) -> None:
    import numpy as np
    from datasketch import MinHash

    from gpt2.data.dedup import minhash, shingle_hashes
    from gpt2.tokenizer import Tokenizer

    src = tmp / "bench.jsonl"
    write_jsonl(src, int(mb * 1e6))
    texts, nbytes = text_bytes(src)
    mbytes = nbytes / 1e6
    enc = Tokenizer.from_pretrained("gpt2").encoding
    cores = os.cpu_count() or 1
    print(f"input: {len(texts):,} documents, {mbytes:.1f} MB of text ({src.stat().st_size / 1e6:.1f} MB JSONL)")

    t = time.perf_counter()
    for text in texts:
        enc.encode_ordinary(text)
    one = mbytes / (time.perf_counter() - t)
    t = time.perf_counter()
    enc.encode_ordinary_batch(texts, num_threads=cores)
    batch = mbytes / (time.perf_counter() - t)
    # The limit is the faster of the two (on a busy 2-core machine the batch can lose to one thread).
    one_label, batch_label = ("", "   (the limit)") if batch >= one else ("   (the limit)", "")
    print(f"tiktoken encode_ordinary, 1 thread            {one:7.2f} MB/s{one_label}")
    print(f"tiktoken encode_ordinary_batch, {cores} threads    {batch:7.2f} MB/s{batch_label}")
    batch = max(one, batch)

    off = mbytes / run_prepare(src, tmp / "out", "--no-dedup")
    print(f"gpt2 prepare, dedup off (quality rules on)    {off:7.2f} MB/s   {off / batch:.2f}x the limit")
    on = mbytes / run_prepare(src, tmp / "out", "--overwrite")
    print(f"gpt2 prepare, exact + MinHash dedup on        {on:7.2f} MB/s   {on / batch:.2f}x the limit")
    bare = mbytes / run_prepare(src, tmp / "out", "--no-dedup", "--no-quality", "--normalize", "none")
    print(f"gpt2 prepare, no filters (tokenize + shards)  {bare:7.2f} MB/s   {bare / batch:.2f}x the limit")

    sample = texts[:500]
    shingles = [shingle_hashes(t, 5) for t in sample]
    smb = sum(len(t.encode()) for t in sample) / 1e6
    t = time.perf_counter()
    for s in shingles:
        minhash(s)
    ours = smb / (time.perf_counter() - t)
    perms = MinHash(num_perm=128, seed=1, scheme="affine32").permutations
    t = time.perf_counter()
    for s in shingles:
        m = MinHash(num_perm=128, seed=1, hashfunc=int, scheme="affine32", permutations=perms)
        m.update_batch(s.tolist())
    theirs = smb / (time.perf_counter() - t)
    assert np.array_equal(m.hashvalues, minhash(shingles[-1]))
    print(f"MinHash signatures (128 perms): ours {ours:.1f} MB/s, datasketch {theirs:.1f} MB/s, "
          f"{ours / theirs:.1f}x; identical signatures")


def rss(gb: float, tmp: Path) -> None:
    src = tmp / "big.jsonl"
    size = write_jsonl(src, int(gb * 1e9), seed=1)
    print(f"input: {size / 1e9:.2f} GB JSONL")
    for flags in (["--no-dedup"], []):
        cmd = [sys.executable, "-m", "gpt2.cli.main", "prepare", str(src), "-o", str(tmp / "out"), "-q",
               "--overwrite", *flags]
        seconds, peak = peak_tree_rss(cmd)
        label = "dedup off" if flags else "dedup on "
        print(f"gpt2 prepare {label}: {seconds:7.1f} s, {size / 1e6 / seconds:.2f} MB/s, "
              f"peak RSS (all processes) {peak / 2**30:.2f} GiB")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mb", type=float, default=40, help="MB of text for the throughput runs")
    p.add_argument("--rss-gb", type=float, default=0, help="also measure peak RSS on this many GB")
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--tmp", help="scratch directory (default: a temporary one)")
    args = p.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory(dir=args.tmp) as d:
        if not args.skip_throughput:
            throughput(args.mb, Path(d))
        if args.rss_gb:
            rss(args.rss_gb, Path(d))


if __name__ == "__main__":
    main()
