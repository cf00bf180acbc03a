"""Bad inputs to `gpt2 predict --model DIR --data FILE`.

{ftmodel} is a fine-tuned two-class model ({ftrecipe}'s output), {tasks} a file of its examples.
"""

from __future__ import annotations

from .harness import Case, write_file

M = ("predict", "--model", "{ftmodel}")
OK = (*M, "--data", "{tasks}")

CASES = [
    Case("predict-model-missing", ("predict", "--model", "{tmp}/nope", "--data", "{tasks}"),
         match=r"nope: no such checkpoint directory"),
    Case("predict-model-is-a-file", ("predict", "--model", "{tasks}", "--data", "{tasks}"),
         match=r"tasks\.jsonl"),
    Case("predict-model-without-a-head", ("predict", "--model", "{ckpt}", "--data", "{tasks}"),
         match=r"task lm is a lm task: it has no labels to predict"),
    Case("predict-no-model", ("predict", "--data", "{tasks}"), match=r"the following arguments are required: --model"),
    Case("predict-data-missing", (*M, "--data", "{tmp}/nope.jsonl"), match=r"nope\.jsonl: no such task file"),
    Case("predict-data-is-a-directory", (*M, "--data", "{tmp}"), match=r"is not a file"),
    Case("predict-data-not-json", (*M, "--data", "{tmp}/x.jsonl"), setup=write_file("x.jsonl", "{oops\n"),
         match=r"x\.jsonl, line 1: not JSON"),
    Case("predict-data-missing-field", (*M, "--data", "{tmp}/x.jsonl"), setup=write_file("x.jsonl", '{"txt": "a"}\n'),
         match=r"x\.jsonl, line 1: missing field 'text'"),
    Case("predict-data-empty", (*M, "--data", "{tmp}/x.jsonl"), setup=write_file("x.jsonl", ""),
         match=r"x\.jsonl: no examples"),
    Case("predict-unknown-task", (*OK, "--task", "banana"), match=r"the model has no task 'banana'; it has: ab"),
    Case("predict-batch-size-zero", (*OK, "--batch-size", "0"), match=r"--batch-size"),
    Case("predict-batch-size-nan", (*OK, "--batch-size", "nan"), match=r"--batch-size"),
    Case("predict-batch-size-huge", (*OK, "--batch-size", "100000"), match=r"--batch-size"),
    Case("predict-device-no-such-gpu", (*OK, "--device", "cuda:99"), match=r"--device 'cuda:99'"),
    Case("predict-device-banana", (*OK, "--device", "banana"), match=r"--device 'banana' is not a device name"),
    Case("predict-json-stdout-full", (*OK, "--json"), stdout="full", match=r"stdout"),
    Case("predict-stdout-closed", OK, stdout="closed", match=r"stdout"),
]
