"""Decoding speed and quality by weight precision: ours at fp32 / bf16 / fp16 / int8 / int4 against
llama.cpp at f32 / f16 / q8_0 / q4_0 on the same weights, in one run.

Speed: greedy decoding, 32-token prompts, 256 new tokens, 2 threads, random weights (speed does
not depend on them). Ours (gpt2.generation.decode_tokens; bf16 = model.to(bfloat16), fp16 / int8 /
int4 = gpt2.quantize.quantize_model; both 16-bit forms are paired with llama.cpp's f16) and llama.cpp (its C API through llama-cpp-python, in a long-lived
subprocess of llama.cpp's own Python that takes one command per run) alternate run by run:
ours fp32, llama.cpp f32, ours bf16, llama.cpp f16, ... for --repeats rounds after one short
untimed run of each; medians. Both sides decode the same prompt ids (one prefill, then a step per
new token), choose by argmax on the host (one per row per step) and are timed from the prompt to
the last new token (the prefill included, as in bench_generate.py), llama.cpp by its own process's
clock. llama.cpp runs as llama_cpp.Llama would set it up (flash attention off), with one sequence
per row (n_seq_max = batch, 512 positions each). Configurations: gpt2 at batch 1 and 8,
gpt2-medium at batch 1; the tables also give how many greedy tokens match ours fp32's.
Every figure is also given as a fraction of the memory-bandwidth floor: a decoding step reads
every weight once, so (bytes of weights read per step) / (memory bandwidth) is the fastest a step
can be. The bandwidth is that of reading (a sum over 512 MiB, as a step only reads weights; the
best of 10, as a floor is the fastest possible); the copy bandwidth (read + write counted, as in
bench_generate.py) is printed beside it. Both move with whatever else shares the host's memory.
Bytes read per step, counted exactly:
  ours fp32 / bf16  every parameter once (the tied head is wte, read in full once), not wpe
                    (one row of it per token)
  ours int8 / int4  the tensors the kernels read in the quantized layers and the quantized head
                    (int8: qweight + bf16 scales; int4: the packed weight + bf16 scales-and-zeros),
                    their biases (and any other tensor they hold, such as the head's mean row),
                    the LayerNorms; not the stored float32 scales / zeros the kernels do not read,
                    nor wte (one row) nor wpe (one row)
  llama.cpp         every tensor of the GGUF file but position_embd; token_embd once, as the tied
                    head (llama.cpp's own q4_0 keeps that head at q6_K, ours int4 has it at int4)
Decoding overhead: time per token of a gpt2-wide model with 1 and with 12 layers (fp32, int8),
whence the cost of one layer and the fixed cost per token (embeddings, head, Python); and of the
demo model.
Quality: perplexity on held-out text at each precision against fp32, top-1 agreement of the
next-token predictions, and greedy agreement over 256 new tokens (fraction of identical tokens,
mean identical prefix; 224 for the demo model, whose context is 256), for (1) the bundled demo
model on the validation split of the bundled corpus (the split `gpt2 prepare --corpus demo`
makes, DEMO_VAL_FRACTION), (2) a GPT-2-vocabulary model (4 layers, 256 wide, 50,257 tokens, 288
positions) that this script trains briefly on that corpus's train split tokenized with GPT-2's
tokenizer (plain AdamW; cached).

Issue targets: ours >= llama.cpp at each matching precision; perplexity +<= 1% for int8, bf16 and fp16
(int4 reported).

    python benchmarks/bench_decode_precision.py            # the full run
    python benchmarks/bench_decode_precision.py --quick    # a smoke run (1-2 minutes; ~3 the first time)
    python benchmarks/bench_decode_precision.py --configs gpt2:1 --sections speed --repeats 5

Time on the 2-core VM (estimated from shorter runs): about 12-13 minutes for the full run (speed
~10: gpt2 batch 1 ~1.5, batch 8 ~4, gpt2-medium ~5; overhead ~0.5; quality ~1), once the caches
exist; the first run adds the GGUF conversions (~0.5 min for gpt2, ~1.5 for gpt2-medium) and the
training of the GPT-2-vocabulary model (150 steps, ~4 min). Caches (GGUF
files keyed by preset and seed with a digest of the weights, the tokenized corpus, the trained
checkpoint) live in --cache-dir, default ~/.cache/gpt2-bench/llama.cpp; delete it to start over.

llama.cpp: llama-cpp-python 0.3.36 built from its PyPI sdist (it vendors llama.cpp, its
convert_hf_to_gguf.py and gguf-py), in a venv of its own (it needs neither torch nor this
package). Found by --llama-python (default: $GPT2_BENCH_LLAMA_PYTHON, else
/tmp/llamacpp/venv/bin/python, else CACHE/venv/bin/python) and the unpacked sdist by --llama-src
(default: $GPT2_BENCH_LLAMA_SRC, else /tmp/llamacpp/src/llama_cpp_python-0.3.36, else
CACHE/src/llama_cpp_python-0.3.36). Without them the peer is skipped (one line says so) and our
own figures are still printed. To build them (about 17 minutes on 2 cores):

    C=~/.cache/gpt2-bench/llama.cpp
    python -m venv $C/venv && $C/venv/bin/pip install "llama-cpp-python==0.3.36" gguf
    mkdir -p $C/src && pip download --no-deps --no-binary :all: "llama-cpp-python==0.3.36" -d $C/src \
        && tar xzf $C/src/llama_cpp_python-0.3.36.tar.gz -C $C/src

The GGUF converter runs in this interpreter (it needs torch and transformers, which are here);
q4_0 is made from the f32 file by llama.cpp's own quantizer. If llama.cpp dies with "illegal
instruction" on a CPU that reports AMX it cannot run, rebuild it with
CMAKE_ARGS="-DCMAKE_C_FLAGS='-mno-amx-tile -mno-amx-int8 -mno-amx-bf16'
-DCMAKE_CXX_FLAGS='-mno-amx-tile -mno-amx-int8 -mno-amx-bf16'" before pip install; this script
reports such a crash per model and goes on without that model. (The build in /tmp/llamacpp/venv,
made with the default flags on this VM, runs q8_0 and q4_0.)
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import interleaved, machine, median  # noqa: E402

EOT = 50256
PRECISIONS = ("fp32", "bf16", "fp16", "int8", "int4")
# The matching llama.cpp type: both 16-bit forms of ours against its f16.
PEER_OF = {"fp32": "f32", "bf16": "f16", "fp16": "f16", "int8": "q8_0", "int4": "q4_0"}
LLAMA_CPP_VERSION = "0.3.36"
SDIST = f"llama_cpp_python-{LLAMA_CPP_VERSION}"
DEFAULT_CACHE = Path("~/.cache/gpt2-bench/llama.cpp").expanduser()
DEFAULT_CONFIGS = "gpt2:1,gpt2:8,gpt2-medium:1"
SECTIONS = ("speed", "overhead", "quality")
WARMUP_NEW = 8  # new tokens of the untimed run before the timed ones

# The GPT-2-vocabulary model trained for the quality table: 288 positions = a 32-token prompt
# + 256 new tokens, every one of them trained.
TRAINED_SHAPE = {"n_layer": 4, "n_head": 4, "n_embd": 256, "n_ctx": 288}
TRAIN_BATCH = 4  # windows of n_ctx tokens per step
TRAIN_LR = 3e-3
PPL_TARGET = 0.01  # int8 and bf16: at most +1% perplexity over fp32


# --------------------------------------------------------------------------- options


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: 16 new tokens, 1 repeat, no gpt2-medium, few quality tokens and train steps")
    p.add_argument("--configs", default=None,
                   help=f"preset:batch pairs for the speed tables (default {DEFAULT_CONFIGS}; --quick: gpt2:1,gpt2:8)")
    p.add_argument("--sections", default=",".join(SECTIONS), help="any of speed,overhead,quality")
    p.add_argument("--prompt", type=int, default=32, help="prompt tokens (default 32)")
    p.add_argument("--new", type=int, default=None, help="new tokens per speed run (default 256; --quick 16)")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds (default 3; --quick 1)")
    p.add_argument("--threads", type=int, default=2, help="threads for both sides (default 2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights and prompts")
    p.add_argument("--overhead-new", type=int, default=None, help="new tokens per overhead run (default 128)")
    p.add_argument("--ppl-windows", type=int, default=None,
                   help="validation windows (of n_ctx tokens) per perplexity (default 32; --quick 4)")
    p.add_argument("--greedy-prompts", type=int, default=None, help="prompts for greedy agreement (default 4)")
    p.add_argument("--quality-new", type=int, default=None,
                   help="new tokens for greedy agreement (default 256, capped by the model's context)")
    p.add_argument("--train-steps", type=int, default=None,
                   help="steps for the GPT-2-vocabulary model (default 150; --quick 10); cached per value")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help=f"default {DEFAULT_CACHE}")
    p.add_argument("--llama-python", type=Path, default=None, help="the Python of llama-cpp-python's venv")
    p.add_argument("--llama-src", type=Path, default=None, help=f"the unpacked {SDIST} sdist")
    p.add_argument("--no-llama", action="store_true", help="time ours only")
    args = p.parse_args()
    quick = args.quick
    args.configs = parse_configs(args.configs or ("gpt2:1,gpt2:8" if quick else DEFAULT_CONFIGS))
    args.sections = [s for s in args.sections.split(",") if s]
    if bad := [s for s in args.sections if s not in SECTIONS]:
        p.error(f"unknown section(s) {', '.join(bad)}; choose from {', '.join(SECTIONS)}")
    args.new = args.new or (16 if quick else 256)
    args.repeats = args.repeats or (1 if quick else 3)
    args.overhead_new = args.overhead_new or (16 if quick else 128)
    args.ppl_windows = args.ppl_windows or (4 if quick else 32)
    args.greedy_prompts = args.greedy_prompts or (2 if quick else 4)
    args.quality_new = args.quality_new or (32 if quick else 256)
    args.train_steps = args.train_steps or (10 if quick else 150)
    args.cache_dir = args.cache_dir.expanduser()
    return args


def parse_configs(text: str) -> list[tuple[str, int]]:
    configs = []
    for item in text.split(","):
        preset, _, batch = item.strip().partition(":")
        configs.append((preset, int(batch or 1)))
    return configs


# --------------------------------------------------------------------------- ours


def our_precisions(fp32: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """The model at each precision; fp32 is the model given, the others are copies."""
    from gpt2.quantize import quantize_model

    return {
        "fp32": fp32,
        "bf16": copy.deepcopy(fp32).to(torch.bfloat16),
        "fp16": quantize_model(copy.deepcopy(fp32), "fp16"),
        "int8": quantize_model(copy.deepcopy(fp32), "int8"),
        "int4": quantize_model(copy.deepcopy(fp32), "int4"),
    }


def random_model(preset: str, seed: int, **overrides: int) -> torch.nn.Module:
    from gpt2 import GPT2, GPT2Config

    torch.manual_seed(seed)
    return GPT2(GPT2Config.preset(preset, **overrides)).eval()


def weight_bytes_per_step(model: torch.nn.Module) -> int:
    """Bytes of weights one decoding step reads (see the module docstring): each tensor once,
    the kernels' own tensors for quantized layers; of wpe only one row (left out), and of wte
    only one row too when the head is a quantized copy of it rather than wte itself."""
    skip = {id(model.transformer.wpe.weight)}
    if getattr(model.lm_head, "weight", None) is not model.transformer.wte.weight:
        skip.add(id(model.transformer.wte.weight))
    return _bytes_read(model.modules(), skip)


def block_bytes(model: torch.nn.Module) -> int:
    """Bytes of the Transformer blocks' weights alone, counted as weight_bytes_per_step does."""
    return _bytes_read(model.transformer.h.modules(), set())


def _bytes_read(modules: Iterable[torch.nn.Module], skip: set[int]) -> int:
    from gpt2.quantize import Int4Linear, Int8Linear

    # The stored float32 scales / zeros (and int4's unpacked-order qweight) are what the file
    # holds; the kernels read their own copies, built by prepare(). Anything else a quantized layer
    # holds (kernel tensors, bias, a head's mean row) is read every step.
    stored_only = {Int8Linear: {"scales"}, Int4Linear: {"qweight", "scales", "zeros"}}
    seen: set[int] = set()
    total = 0
    for module in modules:
        left_out = stored_only.get(type(module), set())
        tensors = [t for name, t in [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]
                   if name not in left_out]
        for t in tensors:
            if id(t) not in seen and id(t) not in skip:
                seen.add(id(t))
                total += t.numel() * t.element_size()
    return total


def greedy(model: torch.nn.Module, prompts: list[list[int]], new: int) -> list[list[int]]:
    """Greedy decoding of every prompt, `new` tokens each, never stopping early."""
    from gpt2.generation import SamplingOptions, decode_tokens

    options = SamplingOptions(max_new_tokens=new, temperature=0, stop_token_ids=())
    with torch.inference_mode():
        steps = list(decode_tokens(model, prompts, options))  # type: ignore[arg-type]
    return [list(row) for row in zip(*steps)]


def memory_bandwidth() -> tuple[float, float]:
    """(read, copy) bandwidth in bytes/s over 512 MiB (far larger than any cache), the best of 10
    runs: a sum reads the tensor once; a copy reads one and writes one (both counted)."""
    n = 1 << 29
    a = torch.ones(n // 4, dtype=torch.float32)
    b = torch.empty_like(a)

    def seconds(fn: Callable[[], object]) -> float:
        for _ in range(3):
            fn()
        times = []
        for _ in range(10):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    return n / seconds(a.sum), 2 * n / seconds(lambda: b.copy_(a))


def matched_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def mean_prefix(rows: list[list[int]], reference: list[list[int]]) -> float:
    return statistics.mean(matched_prefix(r, ref) for r, ref in zip(rows, reference))


def log(message: str) -> None:
    """Progress goes to stderr, so that stdout is the report alone."""
    print(f"[bench_decode_precision] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- llama.cpp

# Runs in llama-cpp-python's interpreter: loads the GGUF files named on its first stdin line,
# runs a prefill and a step of the timed runs' shape on each (a crash there is that model's:
# "probing" names it), says "ready" with each file's bytes read per step, then answers
# each {"cmd": "run", ...} line with the seconds and the tokens. The C API directly, through the
# bindings: llama_cpp.Llama has no way to hold several sequences, which batch 8 needs, and one code
# path serves every batch size. The host's work per step is the same as ours: fill the batch, one
# decode, one argmax per row.
LLAMA_DRIVER = r'''
import json, sys, time
import numpy as np
import llama_cpp as L


def bytes_per_step(path):
    try:
        from gguf import GGUFReader
    except ImportError:
        return None
    # position_embd: one row per token; token_embd is the tied head, read in full once.
    return sum(int(t.n_bytes) for t in GGUFReader(path).tensors if t.name != "position_embd.weight")


class Model:
    def __init__(self, path, threads, batch, ctx_per_seq, prompt):
        self.model = L.llama_model_load_from_file(path.encode(), L.llama_model_default_params())
        if not self.model:
            raise SystemExit(f"{path}: llama.cpp could not load it")
        p = L.llama_context_default_params()
        p.n_seq_max = batch
        p.n_ctx = ctx_per_seq * batch  # each sequence gets its own ctx_per_seq positions
        p.n_batch = p.n_ubatch = max(batch * prompt, 8)
        p.n_threads = p.n_threads_batch = threads
        p.flash_attn_type = L.LLAMA_FLASH_ATTN_TYPE_DISABLED  # as llama_cpp.Llama's default
        p.no_perf = True
        self.ctx = L.llama_init_from_model(self.model, p)
        if not self.ctx:
            raise SystemExit(f"{path}: llama.cpp could not make a context")
        self.n_vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(self.model))
        self.batch = L.llama_batch_init(p.n_batch, 0, batch)

    def decode(self, rows):
        """rows: (sequence, position, token, wants logits); the logits of those that want them."""
        b = self.batch
        b.n_tokens = len(rows)
        for i, (seq, pos, token, out) in enumerate(rows):
            b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = token, pos, 1, out
            b.seq_id[i][0] = seq
        if L.llama_decode(self.ctx, b) != 0:
            raise SystemExit("llama_decode failed")
        outputs = sum(r[3] for r in rows)
        return np.ctypeslib.as_array(L.llama_get_logits(self.ctx), shape=(outputs, self.n_vocab))

    def greedy(self, prompts, new):
        L.llama_memory_clear(L.llama_get_memory(self.ctx), True)
        rows = [(s, i, t, int(i == len(p) - 1)) for s, p in enumerate(prompts) for i, t in enumerate(p)]
        token = self.decode(rows).argmax(axis=1)
        steps = [token.tolist()]
        for step in range(new - 1):
            rows = [(s, len(prompts[s]) + step, int(t), 1) for s, t in enumerate(token)]
            token = self.decode(rows).argmax(axis=1)
            steps.append(token.tolist())
        return [list(r) for r in zip(*steps)]


setup = json.loads(sys.stdin.readline())
L.llama_backend_init()
models = {}
for name, path in setup["models"].items():
    print(json.dumps({"probing": name}), flush=True)
    models[name] = Model(path, setup["threads"], setup["batch"], setup["ctx_per_seq"], setup["prompt"])
    models[name].greedy([[0] * setup["prompt"]] * setup["batch"], 2)
print(json.dumps({"ready": True, "version": L.__version__, "system_info": L.llama_print_system_info().decode(),
                  "bytes_per_step": {n: bytes_per_step(p) for n, p in setup["models"].items()}}), flush=True)
for line in sys.stdin:
    cmd = json.loads(line)
    if cmd["cmd"] == "quit":
        break
    start = time.perf_counter()
    tokens = models[cmd["model"]].greedy(cmd["prompts"], cmd["new"])
    print(json.dumps({"seconds": time.perf_counter() - start, "tokens": tokens}), flush=True)
'''

QUANTIZE_Q4_0 = r'''
import ctypes, sys
import llama_cpp as L
params = L.llama_model_quantize_default_params()
params.ftype = L.LLAMA_FTYPE_MOSTLY_Q4_0
params.nthread = int(sys.argv[3])
sys.exit(L.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), ctypes.byref(params)))
'''


class PeerError(RuntimeError):
    def __init__(self, message: str, short: str = "failed") -> None:
        super().__init__(message)
        self.short = short  # a few words for a table cell


class LlamaCpp:
    """Where llama.cpp is (its Python and its sources), or why it is not there."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.cache = args.cache_dir
        self.threads = args.threads
        self.python = self._first_existing(args.llama_python, "GPT2_BENCH_LLAMA_PYTHON",
                                           [Path("/tmp/llamacpp/venv/bin/python"), self.cache / "venv/bin/python"])
        src = self._first_existing(args.llama_src, "GPT2_BENCH_LLAMA_SRC",
                                   [Path(f"/tmp/llamacpp/src/{SDIST}"), self.cache / "src" / SDIST])
        self.converter_dir = None
        if src is not None:
            for d in (src / "vendor" / "llama.cpp", src):  # the sdist, or llama.cpp's own tree
                if (d / "convert_hf_to_gguf.py").is_file():
                    self.converter_dir = d
        self.version = None
        self.problem = "--no-llama" if args.no_llama else self._check_python()
        self.crashed: dict[str, str] = {}  # GGUF file -> why it was left out

    @staticmethod
    def _first_existing(given: Path | None, env: str, defaults: list[Path]) -> Path | None:
        if given is not None:
            return given.expanduser()
        if os.environ.get(env):
            return Path(os.environ[env]).expanduser()
        return next((d for d in defaults if d.exists()), None)

    def _check_python(self) -> str | None:
        if self.python is None:
            return "no llama-cpp-python venv found"
        if not self.python.exists():
            return f"{self.python} does not exist"
        r = subprocess.run([str(self.python), "-c", "import llama_cpp, gguf; print(llama_cpp.__version__)"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            last = (r.stderr.strip().splitlines() or ["?"])[-1]
            return f"{self.python} cannot import llama_cpp and gguf ({last})"
        self.version = r.stdout.strip()
        return None

    def build_hint(self) -> str:
        c = self.cache
        return (f'python -m venv {c}/venv && {c}/venv/bin/pip install "llama-cpp-python=={LLAMA_CPP_VERSION}" gguf '
                f'&& mkdir -p {c}/src && pip download --no-deps --no-binary :all: '
                f'"llama-cpp-python=={LLAMA_CPP_VERSION}" -d {c}/src && tar xzf {c}/src/{SDIST}.tar.gz -C {c}/src '
                f"(builds llama.cpp from source: ~17 min on 2 cores)")

    # ---------------------------------------------------------------- GGUF files

    def gguf_files(self, model: torch.nn.Module, preset: str, seed: int) -> dict[str, Path]:
        """f32 / f16 / q8_0 / q4_0 GGUF files of exactly these weights, made once and cached."""
        directory = self.cache / "gguf" / f"{preset}-seed{seed}"
        files = {t: directory / f"{t}.gguf" for t in PEER_OF.values()}
        stamp = directory / "weights.json"
        digest = weights_digest(model)
        if stamp.is_file() and all(f.is_file() for f in files.values()):
            if json.loads(stamp.read_text()).get("digest") == digest:
                return files
        if self.converter_dir is None:
            raise PeerError(f"the GGUF files of {preset} are not cached and no llama.cpp sources were found "
                            f"(--llama-src, the unpacked {SDIST} sdist) for convert_hf_to_gguf.py")
        log(f"converting {preset} (seed {seed}) to GGUF f32/f16/q8_0/q4_0, once; cached in {directory}")
        shutil.rmtree(directory, ignore_errors=True)
        hf = directory / "hf"
        hf.mkdir(parents=True)
        from gpt2 import Tokenizer

        model.save_pretrained(hf)
        Tokenizer.from_pretrained("gpt2").save_pretrained(hf)  # the converter reads the vocabulary beside the weights
        for outtype in ("f32", "f16", "q8_0"):
            self._run([sys.executable, str(self.converter_dir / "convert_hf_to_gguf.py"), str(hf),
                       "--outfile", str(files[outtype]) + ".part", "--outtype", outtype],
                      env={"PYTHONPATH": str(self.converter_dir / "gguf-py")}, what=f"convert to {outtype}")
            os.replace(str(files[outtype]) + ".part", files[outtype])
        # q4_0 is not a converter type: llama.cpp's quantizer makes it, from the exact f32 weights.
        self._run([str(self.python), "-c", QUANTIZE_Q4_0, str(files["f32"]), str(files["q4_0"]) + ".part",
                   str(self.threads)], what="quantize to q4_0")
        os.replace(str(files["q4_0"]) + ".part", files["q4_0"])
        shutil.rmtree(hf)
        stamp.write_text(json.dumps({"preset": preset, "seed": seed, "digest": digest}))
        return files

    @staticmethod
    def _run(cmd: list[str], what: str, env: dict[str, str] | None = None) -> None:
        r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
        if r.returncode != 0:
            tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-15:])
            raise PeerError(f"{what} failed (exit {r.returncode}):\n{tail}")

    # ---------------------------------------------------------------- the driver

    def start(self, files: dict[str, Path], batch: int, prompt: int, new: int) -> "LlamaSession":
        """A driver holding every model that runs; a model whose first prefill and step (of the
        timed runs' shape) kill the process (an illegal instruction, say) is reported and left out."""
        files = {t: f for t, f in files.items() if str(f) not in self.crashed}
        while files:
            session = LlamaSession(self.python, self.cache / "llama-driver.log")
            try:
                session.setup({"models": {t: str(f) for t, f in files.items()}, "threads": self.threads,
                               "batch": batch, "ctx_per_seq": max(512, prompt + new), "prompt": prompt})
                return session
            except PeerError as e:
                if session.probing is None:
                    raise
                self.crashed[str(files[session.probing])] = f"crashed: {e.short}"
                log(f"llama.cpp {session.probing}: {e}; going on without it")
                files.pop(session.probing)
        raise PeerError("no llama.cpp model could be loaded")


class LlamaSession:
    def __init__(self, python: Path, log_path: Path) -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        self.stderr = open(log_path, "w")
        self.proc = subprocess.Popen([str(python), "-c", LLAMA_DRIVER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        self.probing: str | None = None
        self.info: dict = {}

    def setup(self, setup: dict) -> None:
        self._send(setup)
        while True:
            reply = self._receive()
            if "probing" in reply:
                self.probing = reply["probing"]
            else:
                self.probing = None
                self.info = reply
                return

    def run(self, model: str, prompts: list[list[int]], new: int) -> tuple[float, list[list[int]]]:
        self._send({"cmd": "run", "model": model, "prompts": prompts, "new": new})
        reply = self._receive()
        return reply["seconds"], reply["tokens"]

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self._send({"cmd": "quit"})
                self.proc.wait(timeout=30)
            except (PeerError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()

    def _send(self, message: dict) -> None:
        try:
            self.proc.stdin.write(json.dumps(message) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._death() from None

    def _receive(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise self._death()
        return json.loads(line)

    def _death(self) -> PeerError:
        code = self.proc.wait()
        self.stderr.flush()
        why = {-4: "illegal instruction", -11: "segmentation fault", -9: "killed"}.get(code, f"exit {code}")
        tail = self.log_path.read_text(errors="replace").strip().splitlines()[-3:]
        return PeerError(f"the llama.cpp process died: {why}" + (f" (log: {' | '.join(tail)})" if tail else ""), why)


def weights_digest(model: torch.nn.Module) -> str:
    """BLAKE2b of every tensor of the state dict: a cached GGUF must hold exactly these weights."""
    h = hashlib.blake2b(digest_size=16)
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(memoryview(t.detach().contiguous().view(torch.uint8).numpy()))
    return h.hexdigest()


# --------------------------------------------------------------------------- speed


def speed_section(args: argparse.Namespace, peer: LlamaCpp, bandwidth: float) -> None:
    presets = list(dict.fromkeys(p for p, _ in args.configs))  # one model build per preset
    for preset in presets:
        log(f"building {preset} at {', '.join(PRECISIONS)}")
        ours = our_precisions(random_model(preset, args.seed))
        files = None
        if peer.problem is None:
            try:
                files = peer.gguf_files(ours["fp32"], preset, args.seed)
            except PeerError as e:
                print(f"\nllama.cpp skipped for {preset}: {e}")
        for p, batch in args.configs:
            if p == preset:
                speed_table(args, preset, batch, ours, peer, files, bandwidth)
        del ours


def warm_up(fns: dict[str, Callable[[], None]]) -> None:
    """One short untimed run of each: the first call's costs (allocations, the first touch of the
    mapped GGUF files' pages, caches) stay out of the timed runs; a full-length one would add a
    quarter to the run time for nothing."""
    for fn in fns.values():
        fn()


def speed_table(args: argparse.Namespace, preset: str, batch: int, ours: dict[str, torch.nn.Module],
                peer: LlamaCpp, files: dict[str, Path] | None, bandwidth: float) -> None:
    g = torch.Generator().manual_seed(args.seed)
    prompts = torch.randint(0, EOT, (batch, args.prompt), generator=g).tolist()
    outputs: dict[str, list[list[int]]] = {}
    peer_seconds: dict[str, list[float]] = {}  # llama.cpp's own timer of each timed run

    def time_ours(name: str, new: int) -> Callable[[], None]:
        def run() -> None:
            outputs[name] = greedy(ours[name], prompts, new)
        return run

    def time_peer(kind: str, new: int, timed: bool) -> Callable[[], None]:
        def run() -> None:
            seconds, outputs[kind] = session.run(kind, prompts, new)
            if timed:
                peer_seconds.setdefault(kind, []).append(seconds)
        return run

    session = None
    if files is not None:
        try:
            session = peer.start(files, batch, args.prompt, args.new)
        except PeerError as e:
            print(f"\nllama.cpp skipped for {preset} batch {batch}: {e}")
    def runs(new: int, timed: bool = True, peer_too: bool = True) -> dict[str, Callable[[], None]]:
        fns = {}
        for name in PRECISIONS:  # ours fp32, llama.cpp f32, ours bf16, llama.cpp f16, ...
            fns[name] = time_ours(name, new)
            if peer_too and session is not None and PEER_OF[name] in session.info["bytes_per_step"]:
                fns[PEER_OF[name]] = time_peer(PEER_OF[name], new, timed)
        return fns

    log(f"timing {preset} batch {batch}: {', '.join(runs(args.new))}; {args.repeats} round(s)")
    peer_bytes: dict[str, int | None] = {}
    try:
        warm_up(runs(min(WARMUP_NEW, args.new), timed=False))
        times = interleaved(runs(args.new), repeats=args.repeats, warmup=0)
        if session is not None:
            peer_bytes = session.info["bytes_per_step"]
            # llama.cpp's figures by its own timer: the request's trip through the pipe is not its cost.
            pipe = {k: median(times[k]) - median(v) for k, v in peer_seconds.items()}
            times.update(peer_seconds)
    except PeerError as e:  # llama.cpp died mid-run: say so, and time ours alone
        print(f"\nllama.cpp failed during {preset} batch {batch}: {e}; ours alone below")
        times = interleaved(runs(args.new, peer_too=False), repeats=args.repeats, warmup=0)
    finally:
        if session is not None:
            session.close()

    print(f"\n## {preset}, batch {batch}: {args.prompt}-token prompts, {args.new} new tokens, greedy")
    if not peer_bytes:
        print(f"llama.cpp: not measured ({peer.problem or 'see above'})")
    print("| ours | llama.cpp | ours tok/s | llama.cpp tok/s | ours / llama.cpp | ms/step ours | llama.cpp "
          "| MiB read/step ours | llama.cpp | of bandwidth floor ours | llama.cpp "
          "| same tokens as ours fp32 (mean prefix) ours | llama.cpp |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    met = []
    for name in PRECISIONS:
        kind = PEER_OF[name]
        o, t = median(times[name]), median(times[kind]) if kind in times else None
        if t is not None:
            met.append(o <= t)
        ours_bytes, theirs_bytes = weight_bytes_per_step(ours[name]), peer_bytes.get(kind)
        ratio = "-" if t is None else (f"**{t / o:.2f}x**" if o <= t else f"{t / o:.2f}x")
        crashed = peer.crashed.get(str(files[kind]), "-") if files else "-"
        theirs_speed = f"{batch * args.new / t:,.1f}" if t is not None else crashed
        row = [name, kind, f"{batch * args.new / o:,.1f}", theirs_speed, ratio,
               f"{o / args.new * 1e3:.2f}", f"{t / args.new * 1e3:.2f}" if t is not None else "-",
               f"{ours_bytes / 2**20:,.1f}", f"{theirs_bytes / 2**20:,.1f}" if theirs_bytes else "-",
               f"{ours_bytes / bandwidth / (o / args.new):.0%}",
               f"{theirs_bytes / bandwidth / (t / args.new):.0%}" if theirs_bytes and t is not None else "-",
               f"{mean_prefix(outputs[name], outputs['fp32']):.0f} / {args.new}",
               f"{mean_prefix(outputs[kind], outputs['fp32']):.0f} / {args.new}" if t is not None else "-"]
        print("| " + " | ".join(row) + " |")
    if met:
        print(f"target ours >= llama.cpp at the matching precision: met at {sum(met)} of {len(met)}")
    spread = {n: (max(ts) - min(ts)) / median(ts) for n, ts in times.items() if len(ts) > 1}
    if spread:
        print("spread of the timed runs, (max - min) / median: " + ", ".join(f"{n} {x:.0%}" for n, x in spread.items()))
    if peer_bytes:
        print(f"llama.cpp timed by its own clock in its process; timed from this one, around the request, it "
              f"would take up to {max(pipe.values()) / args.new * 1e3:.3f} ms/step more (the pipe, JSON)")


# --------------------------------------------------------------------------- overhead


def overhead_section(args: argparse.Namespace, bandwidth: float) -> None:
    """Time per token at batch 1 of gpt2-wide models with 1 and 12 layers, fp32 and int8: the
    slope is one layer's cost, the intercept the fixed cost per token; and the demo model's."""
    import gpt2

    models: dict[str, torch.nn.Module] = {}
    for layers in (1, 12):
        fp32 = random_model("gpt2", args.seed, n_layer=layers)
        models[f"gpt2-wide, {layers} layer{'s' if layers > 1 else ''}, fp32"] = fp32
        models[f"gpt2-wide, {layers} layer{'s' if layers > 1 else ''}, int8"] = quantized_copy(fp32, "int8")
    demo, _ = gpt2.load()
    models["demo model (6 x 256, vocab 8,192), fp32"] = demo
    models["demo model (6 x 256, vocab 8,192), int8"] = quantized_copy(demo, "int8")
    prompt = torch.randint(0, 8192, (1, args.prompt), generator=torch.Generator().manual_seed(args.seed)).tolist()
    fns = {name: (lambda m=m: greedy(m, prompt, args.overhead_new)) for name, m in models.items()}
    log(f"timing the decoding overhead: {len(fns)} models, {args.overhead_new} new tokens")
    times = interleaved(fns, repeats=args.repeats, warmup=1)
    ms = {name: median(ts) / args.overhead_new * 1e3 for name, ts in times.items()}

    print(f"\n## Decoding overhead at small sizes: batch 1, {args.prompt}-token prompt, {args.overhead_new} new tokens")
    print("| model | ms/token | MiB read/token | bandwidth floor ms/token | of the floor |")
    print("|---|---|---|---|---|")
    for name, m in models.items():
        read = weight_bytes_per_step(m)
        floor = read / bandwidth * 1e3
        print(f"| {name} | {ms[name]:.2f} | {read / 2**20:,.1f} | {floor:.2f} | {floor / ms[name]:.0%} |")
    for precision in ("fp32", "int8"):
        one, twelve = (models[f"gpt2-wide, {n}, {precision}"] for n in ("1 layer", "12 layers"))
        per_layer = (ms[f"gpt2-wide, 12 layers, {precision}"] - ms[f"gpt2-wide, 1 layer, {precision}"]) / 11
        fixed = ms[f"gpt2-wide, 1 layer, {precision}"] - per_layer
        layer_floor = block_bytes(twelve) / 12 / bandwidth * 1e3
        rest_floor = (weight_bytes_per_step(one) - block_bytes(one)) / bandwidth * 1e3
        print(f"{precision}: one layer {per_layer:.2f} ms/token ({max(per_layer - layer_floor, 0):.2f} above the "
              f"floor of its weights, {layer_floor:.2f}); fixed cost {fixed:.2f} ms/token (embeddings, head, final "
              f"LayerNorm, host work: {max(fixed - rest_floor, 0):.2f} above the floor of the head, {rest_floor:.2f})")


def quantized_copy(fp32: torch.nn.Module, method: str) -> torch.nn.Module:
    from gpt2.quantize import quantize_model

    return quantize_model(copy.deepcopy(fp32), method)


# --------------------------------------------------------------------------- quality


def prepared_corpus(cache: Path, tokenizer: str) -> Path:
    """The bundled corpus prepared as `gpt2 prepare --corpus demo` does (the same train / val
    split, DEMO_VAL_FRACTION of the documents), with `tokenizer` ("demo" or "gpt2"); cached."""
    from gpt2.data import prepare
    from gpt2.data.corpus import corpus_config, corpus_path, tokenizer_location

    out = cache / "data" / f"demo-corpus-{tokenizer}"
    if not (out / "manifest.json").is_file():
        log(f"tokenizing the bundled corpus with the {tokenizer} tokenizer into {out} (once)")
        prepare([corpus_path("demo")], out, tokenizer=tokenizer_location(tokenizer), config=corpus_config(),
                workers=0, overwrite=True)
    return out


def trained_gpt2_vocab_model(cache: Path, data: Path, steps: int, seed: int) -> Path:
    """A GPT-2-vocabulary model trained briefly on the corpus's train split; cached by its
    settings. Plain AdamW with warm-up and cosine decay, fp32."""
    from gpt2 import GPT2, GPT2Config
    from gpt2.data.loader import ShardLoader

    shape = TRAINED_SHAPE
    out = cache / "trained" / (f"gpt2-vocab-L{shape['n_layer']}-E{shape['n_embd']}-ctx{shape['n_ctx']}"
                               f"-b{TRAIN_BATCH}-steps{steps}-seed{seed}")
    if (out / "config.json").is_file():
        return out
    log(f"training the GPT-2-vocabulary model: {steps} steps of {TRAIN_BATCH} x {shape['n_ctx']} tokens "
        f"(once; cached in {out})")
    torch.manual_seed(seed)
    model = GPT2(GPT2Config(vocab_size=EOT + 1, **shape)).train()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=TRAIN_LR, betas=(0.9, 0.95))
    warmup = max(1, min(20, steps // 10))
    loader = ShardLoader(data, batch_size=TRAIN_BATCH, n_ctx=shape["n_ctx"], seed=seed)
    start = time.perf_counter()
    for step in range(steps):
        progress = max(0.0, (step - warmup) / max(1, steps - warmup))
        cosine = 0.1 + 0.45 * (1 + math.cos(math.pi * progress))  # 1 down to 0.1
        lr = TRAIN_LR * ((step + 1) / warmup if step < warmup else cosine)
        for group in opt.param_groups:
            group["lr"] = lr
        x, y = loader.next_batch()
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 25 == 0 or step == steps - 1:
            log(f"  step {step + 1}/{steps}: loss {loss.item():.3f} ({time.perf_counter() - start:.0f} s)")
    tmp = out.with_name(out.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    model.eval().save_pretrained(tmp)
    os.replace(tmp, out)
    return out


def perplexities(models: dict[str, torch.nn.Module], data: Path, n_ctx: int,
                 windows: int) -> tuple[dict[str, float], dict[str, float], int]:
    """Perplexity of each model on the first `windows` validation windows, and the fraction of
    positions where its top-1 prediction is fp32's; and the number of tokens scored."""
    from gpt2.data.loader import ValLoader

    val = ValLoader(data, batch_size=4, n_ctx=n_ctx, max_windows=windows)
    ppl: dict[str, float] = {}
    top1: dict[str, float] = {}
    reference: list[torch.Tensor] = []
    tokens = 0
    with torch.inference_mode():
        for name, model in models.items():
            nll, same, tokens = 0.0, 0, 0
            for i, (x, y) in enumerate(val):
                logits = model(x).float()
                nll += torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum").item()
                pred = logits.argmax(-1)
                if name == "fp32":
                    reference.append(pred)
                same += int((pred == reference[i]).sum())
                tokens += y.numel()
            ppl[name] = math.exp(nll / tokens)
            top1[name] = same / tokens
    return ppl, top1, tokens


def greedy_prompts(data: Path, count: int, length: int) -> list[list[int]]:
    """`length` tokens from the middle of each of the first `count` validation documents long
    enough: held-out text the models continue."""
    from gpt2.data.shards import Dataset

    prompts = []
    for doc in Dataset(data).iter_documents("val"):
        if len(doc) >= 2 * length:
            middle = len(doc) // 2
            prompts.append([int(t) for t in doc[middle:middle + length]])
        if len(prompts) == count:
            break
    return prompts


def quality_table(title: str, models: dict[str, torch.nn.Module], data: Path, args: argparse.Namespace) -> None:
    n_ctx = models["fp32"].config.n_ctx
    ppl, top1, scored = perplexities(models, data, n_ctx, args.ppl_windows)
    prompts = greedy_prompts(data, args.greedy_prompts, args.prompt)
    new = min(args.quality_new, n_ctx - args.prompt)
    outputs = {name: greedy(m, prompts, new) for name, m in models.items()}
    ref = outputs["fp32"]
    capped = f" (capped by the model's {n_ctx} positions)" if new < args.quality_new else ""
    print(f"\n## Quality: {title}")
    print(f"perplexity over {scored:,} held-out tokens ({args.ppl_windows} windows of {n_ctx}); greedy "
          f"agreement with fp32 over {new} new tokens{capped} from {len(prompts)} held-out {args.prompt}-token prompts")
    print("| precision | perplexity | vs fp32 | target | top-1 agreement with fp32 | greedy: identical tokens "
          "| greedy: mean identical prefix |")
    print("|---|---|---|---|---|---|---|")
    for name in models:
        change = ppl[name] / ppl["fp32"] - 1
        target = "-" if name == "fp32" else (("met" if change <= PPL_TARGET else "**missed**") + " (<= +1%)"
                                             if name in ("bf16", "fp16", "int8") else "reported")
        same = statistics.mean(sum(a == b for a, b in zip(r, f)) / new for r, f in zip(outputs[name], ref))
        print(f"| {name} | {ppl[name]:,.3f} | {change:+.2%} | {target} | {top1[name]:.2%} | {same:.1%} "
              f"| {mean_prefix(outputs[name], ref):.0f} / {new} |")


def quality_section(args: argparse.Namespace) -> None:
    import gpt2

    demo, _ = gpt2.load()
    data = prepared_corpus(args.cache_dir, "demo")
    log("quality: the demo model")
    quality_table("the demo model (6 layers, 256 wide, vocab 8,192) on the bundled corpus's validation split",
                  our_precisions(demo), data, args)
    del demo
    data = prepared_corpus(args.cache_dir, "gpt2")
    checkpoint = trained_gpt2_vocab_model(args.cache_dir, data, args.train_steps, args.seed)
    model, _ = gpt2.load(str(checkpoint))
    log("quality: the GPT-2-vocabulary model")
    s = TRAINED_SHAPE
    quality_table(f"a GPT-2-vocabulary model trained here ({s['n_layer']} layers, {s['n_embd']} wide, vocab 50,257, "
                  f"{args.train_steps} steps of {TRAIN_BATCH} x {s['n_ctx']} tokens on the corpus's train split)",
                  our_precisions(model), data, args)


# --------------------------------------------------------------------------- main


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    peer = LlamaCpp(args)
    bandwidth, copy_bandwidth = memory_bandwidth()

    print("# Decoding by weight precision: ours (fp32 / bf16 / fp16 / int8 / int4) vs llama.cpp (f32 / f16 / q8_0 / q4_0)")
    print(f"# machine: {machine()}")
    print(f"# threads {args.threads} (both sides); {args.repeats} alternating round(s) after a short warm-up, "
          f"medians; seed {args.seed}"
          f"{'; --quick (a smoke run: figures not for comparison)' if args.quick else ''}")
    if peer.problem is None:
        print(f"# llama.cpp: llama-cpp-python {peer.version} ({peer.python}); GGUF converter "
              f"{peer.converter_dir or 'not found (cached files only)'}")
    elif args.no_llama:
        print("# llama.cpp: not run (--no-llama)")
    else:
        print(f"# llama.cpp peer skipped: {peer.problem}. To build it: {peer.build_hint()}")
    print("# tokens/s = batch x new tokens / time from prompt to last token; a step = one new token per row; "
          f"bandwidth floor = weight bytes read per step / read bandwidth, measured {bandwidth / 1e9:.1f} GB/s "
          f"(copy bandwidth {copy_bandwidth / 1e9:.1f} GB/s, read + write counted: a floor from it would make every "
          f"fraction {bandwidth / copy_bandwidth:.2f}x as large)")

    if "speed" in args.sections:
        speed_section(args, peer, bandwidth)
    if "overhead" in args.sections:
        overhead_section(args, bandwidth)
    if "quality" in args.sections:
        quality_section(args)


if __name__ == "__main__":
    main()
