"""Tokenizer encode throughput: ours vs plain tiktoken vs HF tokenizers / transformers.

Text: a few MB of mixed documents (Python sources from the standard library, English prose
from the bundled demo corpus or, without it, prose generated from GPT-2's word tokens, and
multilingual/emoji text). Every contender must give identical ids first; then single-thread
encode (one document at a time) and batched encode (all documents, one thread per core) are
timed, contenders alternating within each repeat; medians are reported, in MB/s of UTF-8
input. Issue target: ours / tiktoken >= 0.9x.

    python benchmarks/bench_tokenizer.py            # ~5 MB, 5 repeats
    python benchmarks/bench_tokenizer.py --quick    # ~1 MB, 3 repeats, no transformers
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import random
import sys
import sysconfig
import tempfile
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")  # HF's batch encode uses all cores
sys.path.insert(0, str(Path(__file__).parent))
from _common import interleaved, machine, median  # noqa: E402

UNICODE_LINES = [
    "数学は楽しい。東京の天気は晴れです。中文测试：你好，世界！한국어 텍스트도 있습니다.",
    "Русский текст, ελληνικά, עברית, العربية, हिन्दी — mixed scripts in one line.",
    "Emoji: 👨‍👩‍👧‍👦 🇺🇸🇫🇷🇯🇵 👍🏽 🎉🎉 ❤️‍🔥 and café naïve résumé coöperate.",
    "Maths: ∀x∈ℝ, x² ≥ 0; ∑ᵢ aᵢ = 1; π ≈ 3.14159; ½ + ¼ = ¾.",
]


def _sources(limit: int) -> list[str]:
    docs, total = [], 0
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        docs.append(text)
        total += len(text.encode())
        if total >= limit:
            break
    return docs


def _prose(limit: int, words: list[str]) -> list[str]:
    demo = Path(__file__).parents[1] / "src" / "gpt2" / "assets" / "corpus" / "demo.jsonl.xz"
    docs, total = [], 0
    if demo.exists():
        with lzma.open(demo, "rt", encoding="utf-8") as f:
            for line in f:
                text = json.loads(line)["text"][: 200_000]
                docs.append(text)
                total += len(text.encode())
                if total >= limit:
                    return docs
    rng = random.Random(0)
    while total < limit:
        sentences = [" ".join(rng.choice(words) for _ in range(rng.randint(5, 20))).capitalize() + "."
                     for _ in range(200)]
        docs.append(" ".join(sentences) + "\n\n")
        total += len(docs[-1].encode())
    return docs


def _unicode(limit: int) -> list[str]:
    rng = random.Random(1)
    docs, total = [], 0
    while total < limit:
        docs.append("\n".join(rng.choice(UNICODE_LINES) for _ in range(400)))
        total += len(docs[-1].encode())
    return docs


def _split(doc: str, size: int = 32_000) -> list[str]:
    """Long documents in pieces of about `size` characters, cut after a newline (so that a
    batch has enough similar-sized items to keep every thread busy)."""
    pieces = []
    while len(doc) > 2 * size:
        cut = doc.find("\n", size) + 1 or len(doc)
        pieces.append(doc[:cut])
        doc = doc[cut:]
    return pieces + [doc] if doc else pieces


def corpus(megabytes: float, words: list[str]) -> list[str]:
    n = int(megabytes * 1e6)
    docs = _sources(int(n * 0.4)) + _prose(int(n * 0.45), words) + _unicode(int(n * 0.15))
    docs = [piece for doc in docs for piece in _split(doc)]
    random.Random(2).shuffle(docs)
    return docs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--megabytes", type=float, default=5.0)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for batched encode")
    p.add_argument("--quick", action="store_true", help="1 MB, 3 repeats, without transformers")
    args = p.parse_args()
    if args.quick:
        args.megabytes, args.repeats = 1.0, 3

    import tiktoken
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import models, pre_tokenizers

    from gpt2 import Tokenizer
    from gpt2.tokenizer import GPT2_PATTERN, EOT

    ours = Tokenizer.from_pretrained("gpt2")
    ranks = dict(ours.mergeable_ranks)
    plain = tiktoken.Encoding("gpt2-plain", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                              special_tokens={EOT: 50256})
    tmp = tempfile.TemporaryDirectory()
    ours.save_pretrained(tmp.name)
    hf = HFTokenizer(models.BPE.from_file(f"{tmp.name}/vocab.json", f"{tmp.name}/merges.txt"))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)

    words = [t.decode().strip() for t in ranks if t[:1] == b" " and t[1:].isalpha() and len(t) > 2]
    docs = corpus(args.megabytes, words)
    nbytes = sum(len(d.encode()) for d in docs)
    threads = args.threads

    single = {
        "ours": lambda: [ours.encode(d) for d in docs],
        "tiktoken": lambda: [plain.encode_ordinary(d) for d in docs],
        "HF tokenizers": lambda: [hf.encode(d, add_special_tokens=False).ids for d in docs],
    }
    batched = {
        "ours": lambda: ours.encode_batch(docs, num_threads=threads),
        "tiktoken": lambda: plain.encode_ordinary_batch(docs, num_threads=threads),
        "HF tokenizers": lambda: [e.ids for e in hf.encode_batch(docs, add_special_tokens=False)],
    }
    if not args.quick:
        from transformers import GPT2TokenizerFast

        fast = GPT2TokenizerFast(vocab=f"{tmp.name}/vocab.json", merges=f"{tmp.name}/merges.txt")
        fast.model_max_length = 10**9  # silence the long-input warning
        single["transformers"] = lambda: [fast(d, split_special_tokens=True)["input_ids"] for d in docs]
        batched["transformers"] = lambda: fast(docs, split_special_tokens=True)["input_ids"]

    expected = single["tiktoken"]()
    for name, fn in [*single.items(), *batched.items()]:
        if fn() != expected:
            sys.exit(f"{name}: ids differ from tiktoken's")

    results = {}
    for mode, fns in (("single-thread", single), (f"batched, {threads} threads", batched)):
        times = interleaved(fns, repeats=args.repeats, warmup=0)
        results[mode] = {name: nbytes / 1e6 / median(t) for name, t in times.items()}

    names = list(single)
    print(f"# tokenizer encode throughput, GPT-2 vocabulary, {nbytes / 1e6:.2f} MB in {len(docs)} documents "
          f"({sum(map(len, expected)):,} tokens), MB/s of UTF-8 input")
    print(f"# machine: {machine()}")
    print(f"# all contenders gave identical ids; {args.repeats} alternating repeats, medians")
    print("| mode | " + " | ".join(names) + " | ours / tiktoken |")
    print("|---|" + "---|" * (len(names) + 1))
    for mode, mbs in results.items():
        cells = " | ".join(f"{mbs[n]:.2f}" for n in names)
        print(f"| {mode} | {cells} | {mbs['ours'] / mbs['tiktoken']:.2f}x |")


if __name__ == "__main__":
    main()
