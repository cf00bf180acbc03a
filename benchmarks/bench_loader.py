"""Training loader throughput: (x, y) batches per second from memory-mapped shards.

Prepares the bundled demo corpus (2.7M tokens) once, then times ShardLoader.next_batch() for a few
batch shapes, with the page cache warm. A training step of even the smallest model takes
milliseconds, so the loader must deliver thousands of batches per second to stay out of the way.

    python benchmarks/bench_loader.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine  # noqa: E402


def main() -> None:
    from gpt2.data import prepare
    from gpt2.data.corpus import corpus_config, corpus_path
    from gpt2.data.loader import ShardLoader, ValLoader

    print(machine())
    with tempfile.TemporaryDirectory() as d:
        prepare([corpus_path("demo")], Path(d) / "demo", config=corpus_config(), workers=0)
        for batch, n_ctx in ((8, 256), (16, 1024), (64, 1024)):
            loader = ShardLoader(Path(d) / "demo", batch_size=batch, n_ctx=n_ctx, seed=0)
            for _ in range(20):
                loader.next_batch()
            n, start = 0, time.perf_counter()
            while time.perf_counter() - start < 2.0:
                loader.next_batch()
                n += 1
            rate = n / (time.perf_counter() - start)
            print(f"ShardLoader  batch {batch:>3} x n_ctx {n_ctx:>4}: {rate:9,.0f} batches/s "
                  f"({rate * batch * n_ctx / 1e6:,.1f} M tokens/s)")
        val = ValLoader(Path(d) / "demo", batch_size=16, n_ctx=1024)
        start = time.perf_counter()
        count = sum(1 for _ in val)
        rate = count / (time.perf_counter() - start)
        print(f"ValLoader    batch  16 x n_ctx 1024: {rate:9,.0f} batches/s (one pass, {count} batches)")


if __name__ == "__main__":
    main()
