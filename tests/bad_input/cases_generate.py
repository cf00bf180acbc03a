"""Bad inputs to `gpt2 generate`: every numeric option out of range, NaN, infinite, huge or not
a number; devices and dtypes that do not exist; models that cannot be loaded; prompts that are
missing, empty or unreadable; stdin closed; stdout closed or full; and Ctrl-C while the model
loads, at the interactive prompt and while text is generated (exit 130 within the deadline)."""

from __future__ import annotations

from .cases_info import checkpoint
from .harness import Case

M = ("--model", "{ckpt}")  # the tiny checkpoint: loads in a moment
C = "{tmp}/c"
# Generates until interrupted: the tiny model's context is 64 tokens, so the sliding-window
# warning on stderr says that text is being generated.
FOREVER = ("--max-new-tokens", "1000000", "--ignore-eot")
GENERATING = r"sliding the window"


def bad(option: str, value: str, match: str, id_: str) -> Case:
    return Case(f"generate-{id_}", ("generate", "x", option, value, *M), match=rf"argument {option}: .*{match}")


CASES = [
    # Numbers: each option's documented range.
    bad("--max-new-tokens", "4e9", r"'4e9' is not an integer", "max-new-tokens-4e9"),
    bad("--max-new-tokens", "100000000000000000000", r"out of range", "max-new-tokens-1e20"),
    bad("--max-new-tokens", "1000001", r"out of range", "max-new-tokens-above-bound"),
    bad("--max-new-tokens", "0", r"out of range", "max-new-tokens-zero"),
    bad("--max-new-tokens", "many", r"'many' is not an integer", "max-new-tokens-word"),
    bad("--temperature", "-0.5", r"out of range: must be at least 0", "temperature-negative"),
    bad("--temperature", "nan", r"not a finite number", "temperature-nan"),
    bad("--temperature", "inf", r"not a finite number", "temperature-inf"),
    bad("--temperature", "1e999", r"not a finite number", "temperature-overflow"),
    bad("--top-k", "-1", r"out of range", "top-k-negative"),
    bad("--top-k", "99999999999", r"out of range", "top-k-huge"),
    bad("--top-k", "4.5", r"'4.5' is not an integer", "top-k-fraction"),
    bad("--top-p", "0", r"out of range: must be in \(0, 1\]", "top-p-zero"),
    bad("--top-p", "1.5", r"out of range", "top-p-above-one"),
    bad("--top-p", "nan", r"not a finite number", "top-p-nan"),
    bad("--repetition-penalty", "0", r"out of range", "repetition-penalty-zero"),
    bad("--repetition-penalty", "-2", r"out of range", "repetition-penalty-negative"),
    bad("--repetition-penalty", "inf", r"not a finite number", "repetition-penalty-inf"),
    bad("--seed", "-1", r"out of range", "seed-negative"),
    bad("--seed", str(2**63), r"out of range", "seed-too-big"),
    bad("--seed", "lucky", r"'lucky' is not an integer", "seed-word"),
    bad("--n-samples", "0", r"out of range", "n-samples-zero"),
    bad("--n-samples", "1000000", r"out of range", "n-samples-huge"),
    bad("--n-samples", "nan", r"'nan' is not an integer", "n-samples-nan"),
    Case("generate-ignore-eot-bad-count", ("generate", "--unconditional", "--ignore-eot", "--max-new-tokens", "-5"),
         match=r"argument --max-new-tokens: -5 is out of range"),
    Case("generate-stop-empty", ("generate", "x", "--stop", "", *M), match=r"--stop '': empty text"),
    # Devices and dtypes.
    Case("generate-device-cuda", ("generate", "x", "--device", "cuda", *M),
         match=r"--device 'cuda': CUDA is not available on this machine; devices here: cpu"),
    Case("generate-device-banana", ("generate", "x", "--device", "banana", *M),
         match=r"--device 'banana' is not a device name; devices here: cpu"),
    Case("generate-dtype-banana", ("generate", "x", "--dtype", "banana", *M),
         match=r"argument --dtype: invalid choice: 'banana'"),
    # --quantize: a method that does not exist, a model it does not fit, weights already quantized.
    Case("generate-quantize-int3", ("generate", "x", "--quantize", "int3", *M),
         match=r"argument --quantize: invalid choice: 'int3'"),
    Case("generate-quantize-int4-narrow-model", ("generate", "x", "--quantize", "int4", *M),
         match=r"int4 with groups of 32 needs n_embd to be a multiple of 32; this model's is 48"),
    Case("generate-quantize-already-quantized", ("generate", "x", "--quantize", "int4", "--model", "{qckpt}"),
         match=r"already holds quantized weights"),
    Case("generate-quantize-cuda", ("generate", "x", "--quantize", "int8", "--device", "cuda", *M),
         match=r"--device 'cuda': CUDA is not available"),
    # Models.
    Case("generate-model-missing", ("generate", "x", "--model", "{tmp}/nope"), match=r"nope: no such checkpoint directory"),
    # --adapter: a LoRA adapter directory on --model
    Case("generate-adapter-missing", ("generate", "x", *M, "--adapter", "{tmp}/nope"), match=r"nope"),
    Case("generate-adapter-is-a-file", ("generate", "x", *M, "--adapter", "{text}"), match=r"text\.txt"),
    Case("generate-adapter-not-an-adapter", ("generate", "x", *M, "--adapter", "{ckpt}"),
         match=r"adapter_config\.json"),
    # --chat
    Case("generate-chat-unconditional", ("generate", "--chat", "--unconditional", *M),
         match=r"--chat needs a message"),
    Case("generate-chat-empty-message", ("generate", "", "--chat", *M), match=r"empty prompt"),
    Case("generate-model-is-a-file", ("generate", "x", "--model", "{text}"), match=r"text.txt: not a directory"),
    Case("generate-model-under-a-file", ("generate", "x", "--model", "{text}/ckpt"),
         match=r"text.txt/ckpt: no such checkpoint directory"),
    Case("generate-model-unknown-hub-name", ("generate", "x", "--model", "no-such-user/no-such-model"),
         env={"HF_HUB_OFFLINE": "1"}, match=r"cannot download 'no-such-user/no-such-model'"),
    Case("generate-model-without-weights", ("generate", "x", "--model", C), setup=checkpoint(keep_weights=False),
         match=r"c: no weights file"),
    Case("generate-model-truncated-weights", ("generate", "x", "--model", C), setup=checkpoint(weights="truncated"),
         match=r"model.safetensors: truncated"),
    Case("generate-model-pickled-weights", ("generate", "x", "--model", C), setup=checkpoint(weights="pickle"),
         match=r"pytorch_model.bin: refused: it holds a Python object"),
    Case("generate-model-n-layer-disagrees", ("generate", "x", "--model", C), setup=checkpoint({"n_layer": 2}),
         match=r"config.json says n_layer=2 but the weights have 3 layers"),
    Case("generate-model-config-out-of-range", ("generate", "x", "--model", C), setup=checkpoint({"n_head": 7}),
         match=r"must be divisible by n_head \(7\)"),
    # Prompts and stdin.
    Case("generate-empty-prompt", ("generate", "", *M), match=r"empty prompt"),
    Case("generate-no-prompt", ("generate", *M), match=r"empty prompt: give a PROMPT"),
    Case("generate-stdin-empty", ("generate", "-", *M), stdin=b"", match=r"empty prompt"),
    Case("generate-stdin-closed", ("generate", "-", *M), stdin="closed", match=r"stdin is closed"),
    Case("generate-stdin-binary", ("generate", "-", *M), stdin=b"\xff\xfe\x00binary", match=r"stdin is not UTF-8"),
    Case("generate-interactive-stdin-closed", ("generate", "--interactive", *M), stdin="closed",
         match=r"--interactive: stdin is closed"),
    Case("generate-interactive-with-prompt", ("generate", "--interactive", "x"), match=r"--interactive reads its prompts itself"),
    Case("generate-interactive-unconditional", ("generate", "--interactive", "--unconditional"),
         match=r"give no PROMPT and no --unconditional"),
    Case("generate-unconditional-with-prompt", ("generate", "x", "--unconditional"), match=r"--unconditional takes no PROMPT"),
    # stdout.
    Case("generate-stdout-closed", ("generate", "x", *M), stdout="closed", match=r"stdout is closed"),
    Case("generate-stdout-full", ("generate", "x", "--max-new-tokens", "3", *M), stdout="full",
         match=r"cannot write to stdout: No space left on device"),
    Case("generate-json-stdout-full", ("generate", "x", "--json", "--n-samples", "2", "--max-new-tokens", "3", *M),
         stdout="full", match=r"No space left on device"),
    # Ctrl-C: exit 130 within the deadline, at several moments.
    Case("generate-ctrl-c-while-loading", ("generate", "--interactive", *M), stdin=b"never sent",
         interrupt=r"Loading ", expect=130),
    Case("generate-ctrl-c-at-the-interactive-prompt", ("generate", "--interactive", *M), stdin=b"never sent",
         interrupt=r"Model prompt >>> ", expect=130),
    Case("generate-ctrl-c-while-generating", ("generate", "x", *FOREVER, *M), interrupt=GENERATING, expect=130),
    Case("generate-ctrl-c-while-generating-samples", ("generate", "--unconditional", "--n-samples", "3", *FOREVER, *M),
         interrupt=GENERATING, expect=130),
    Case("generate-ctrl-c-while-generating-json", ("generate", "x", "--json", "--n-samples", "2", *FOREVER, *M),
         interrupt=GENERATING, expect=130),
]
