"""`gpt2 finetune` end to end on a tiny model: a run, its outputs (loadable by transformers),
exact resume, several tasks at once, and `gpt2 predict`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from gpt2.finetune.checkpoint import load_task_model
from gpt2.finetune.config import load_finetune_recipe
from gpt2.finetune.trainer import FinetuneTrainer



def _recipe(tmp_path, tiny_ckpt, tasks: str, extra: str = "") -> str:
    path = tmp_path / "recipe.toml"
    path.write_text(f'''
run_dir = "{tmp_path / 'run'}"
[model]
init_from = "{tiny_ckpt}"
dropout = 0.0
[train]
batch_size = 8
micro_batch_size = 4
max_steps = 6
device = "cpu"
[optim]
lr = 1e-3
[log]
interval = 1
{extra}
{tasks}
''')
    return str(path)


def _task(name: str, kind: str, train, valid=None) -> str:
    """One [[tasks]] table of a recipe."""
    return (f'[[tasks]]\nname = "{name}"\ntype = "{kind}"\ntrain = "{train}"\n'
            + (f'valid = "{valid}"\n' if valid else ""))


def _metrics(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_a_classification_run_saves_a_model_transformers_loads(tmp_path, tiny_ckpt, sentiment_files):
    import transformers

    train, valid = sentiment_files
    recipe = _recipe(tmp_path, tiny_ckpt, _task("sentiment", "classification", train, valid))
    result = FinetuneTrainer(load_finetune_recipe(recipe)).run()
    assert result.step == 6 and not result.interrupted
    final = tmp_path / "run" / "final"
    ours = load_task_model(final)
    assert ours.tasks["sentiment"].labels == ["neg", "pos"]
    assert ours.config.vocab_size == 8192 + 3  # start, delim, extract
    records = _metrics(tmp_path / "run")
    steps = [r for r in records if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2, 3, 4, 5, 6] and all(r["task"] == "sentiment" for r in steps)
    assert all("task_loss" in r and "lm_loss" in r for r in steps)  # GPT-1's auxiliary loss is on
    vals = [r for r in records if "val_accuracy" in r]
    assert vals and {"val_f1_macro", "val_mcc", "val_loss"} <= vals[-1].keys()
    hf = transformers.AutoModelForSequenceClassification.from_pretrained(final).eval()
    tok = transformers.AutoTokenizer.from_pretrained(final)
    ids = tok("<|start|>good joy sun<|extract|>")["input_ids"]
    from gpt2.finetune.batching import collate
    from gpt2.finetune.tasks import Example

    with torch.no_grad():
        theirs = hf(torch.tensor([ids])).logits
        mine, _ = ours("sentiment", collate([Example([ids])], pad_id=0))
    torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=0)


def test_resume_continues_bit_for_bit(tmp_path, tiny_ckpt, sentiment_files):
    train, valid = sentiment_files
    tasks = _task("sentiment", "classification", train)
    recipe = _recipe(tmp_path, tiny_ckpt, tasks, "[checkpoint]\ninterval = 3\nkeep_last = 5")
    FinetuneTrainer(load_finetune_recipe(recipe)).run()
    run = tmp_path / "run"
    whole = load_task_model(run / "final").state_dict()
    losses = [r["loss"] for r in _metrics(run) if "loss" in r]
    shutil.rmtree(run / "checkpoints" / "step-0000006")
    shutil.rmtree(run / "final")
    (run / "metrics.jsonl").unlink()
    result = FinetuneTrainer(load_finetune_recipe(recipe)).run()
    assert result.step == 6
    resumed = load_task_model(run / "final").state_dict()
    for key, value in whole.items():
        assert torch.equal(resumed[key], value), key
    assert [r["loss"] for r in _metrics(run) if "loss" in r] == losses[3:]


def test_several_tasks_share_one_body(tmp_path, tiny_ckpt, sentiment_files, jsonl):
    train, _ = sentiment_files
    mc = jsonl(tmp_path / "mc.jsonl", [
        {"context": f"count {i}", "choices": [f"a {i}", f"b {i}", f"c {i}"], "label": i % 3} for i in range(24)])
    sts = jsonl(tmp_path / "sts.jsonl", [
        {"text_a": f"one {i}", "text_b": f"two {i}", "label": (i % 5) / 4} for i in range(24)])
    tasks = (_task("sentiment", "classification", train, train) + _task("story", "multiple_choice", mc, mc)
             + _task("sts", "similarity", sts, sts))
    recipe = _recipe(tmp_path, tiny_ckpt, tasks, "[eval]\ninterval = 3")
    FinetuneTrainer(load_finetune_recipe(recipe, ["train.max_steps=9"])).run()
    records = _metrics(tmp_path / "run")
    assert {r["task"] for r in records if "loss" in r} <= {"sentiment", "story", "sts"}
    assert {r["task"] for r in records if "val_loss" in r} == {"sentiment", "story", "sts"}
    assert "val_pearson" in next(r for r in records if r.get("task") == "sts" and "val_loss" in r)
    model = load_task_model(tmp_path / "run" / "final")
    assert list(model.tasks) == ["sentiment", "story", "sts"] and model.tasks["sts"].regression


def test_lm_task_continues_pretraining(tmp_path, tiny_ckpt, jsonl):
    texts = jsonl(tmp_path / "lm.jsonl", [{"text": "To be, or not to be: that is the question. " * 3}] * 8)
    recipe = _recipe(tmp_path, tiny_ckpt, _task("mine", "lm", texts))
    FinetuneTrainer(load_finetune_recipe(recipe, ["train.max_steps=3"])).run()
    losses = [r["loss"] for r in _metrics(tmp_path / "run") if "loss" in r]
    assert len(losses) == 3 and losses[-1] < losses[0]
    import transformers

    transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "run" / "final")  # a plain LM checkpoint


def test_lora_trains_adapters_only_and_peft_reads_them(tmp_path, tiny_ckpt, sentiment_files):
    import peft
    import transformers

    train, _ = sentiment_files
    recipe = _recipe(tmp_path, tiny_ckpt, _task("sentiment", "classification", train) + '''
[lora]
r = 4
alpha = 8
targets = ["c_attn", "c_fc"]
''', "[checkpoint]\ninterval = 3\nkeep_last = 5")
    config = load_finetune_recipe(recipe)
    assert config.model.new_tokens is False  # the base vocabulary stays the adapter's
    FinetuneTrainer(config).run()
    run = tmp_path / "run"
    merged = load_task_model(run / "final")
    from gpt2 import GPT2

    original = GPT2.from_pretrained(tiny_ckpt)
    # the base weights moved only through the merged adapters: embeddings and LayerNorms are untouched
    assert torch.equal(merged.lm.transformer.wte.weight, original.transformer.wte.weight)
    assert torch.equal(merged.lm.transformer.ln_f.weight, original.transformer.ln_f.weight)
    assert not torch.equal(merged.lm.transformer.h[0].attn.c_attn.weight, original.transformer.h[0].attn.c_attn.weight)
    # PEFT puts the adapter on transformers' GPT-2 and gets the merged model's body outputs
    hf = transformers.GPT2LMHeadModel.from_pretrained(tiny_ckpt)
    with_adapter = peft.PeftModel.from_pretrained(hf, run / "final-adapter").eval()
    ids = torch.tensor([[5, 17, 300, 42, 8191]])
    with torch.no_grad():
        torch.testing.assert_close(with_adapter(ids).logits, merged.lm(ids), atol=1e-5, rtol=0)
    # resume from the step-3 adapter checkpoint reproduces the final adapter exactly
    first = (run / "final-adapter" / "adapter_model.safetensors").read_bytes()
    shutil.rmtree(run / "checkpoints" / "step-0000006")
    shutil.rmtree(run / "final-adapter")
    FinetuneTrainer(load_finetune_recipe(recipe)).run()
    assert (run / "final-adapter" / "adapter_model.safetensors").read_bytes() == first


def test_distillation_from_two_teachers_into_a_smaller_student(tmp_path, tiny_ckpt, sentiment_files):
    """Two fine-tuned teachers (different seeds) -> their mean soft targets -> a smaller student."""
    from gpt2 import GPT2, GPT2Config
    from gpt2.loading import load_tokenizer

    train, valid = sentiment_files
    task = _task("sentiment", "classification", train, valid)
    teachers = []
    for seed in (1, 2):
        recipe = _recipe(tmp_path, tiny_ckpt, task)
        FinetuneTrainer(load_finetune_recipe(recipe, [f"train.seed={seed}", f"run_dir={tmp_path / f't{seed}'}"])).run()
        teachers.append(str(tmp_path / f"t{seed}" / "final"))
    small = tmp_path / "small"
    GPT2(GPT2Config(vocab_size=8192, n_ctx=64, n_embd=16, n_layer=1, n_head=2)).save_pretrained(small)
    load_tokenizer(tiny_ckpt).save_pretrained(small)
    recipe = _recipe(tmp_path, small, task + f"[distill]\nteachers = {json.dumps(teachers)}\ntemperature = 2.0\n"
                                              "alpha = 0.7\n")
    FinetuneTrainer(load_finetune_recipe(recipe)).run()
    run = tmp_path / "run"
    steps = [r for r in _metrics(run) if "loss" in r]
    assert all("distill_loss" in r for r in steps)
    assert (run / "teacher-targets.safetensors").is_file()
    student = load_task_model(run / "final")
    assert student.config.n_embd == 16
    # the cached soft targets are the teachers' mean softened probabilities
    from safetensors.torch import load_file

    (targets,) = load_file(run / "teacher-targets.safetensors").values()
    assert targets.shape == (64, 2)
    torch.testing.assert_close(targets.sum(-1), torch.ones(64))


def test_a_teacher_with_another_vocabulary_is_refused(tmp_path, tiny_ckpt, tiny_hf_dir, sentiment_files):
    from gpt2.errors import FinetuneError

    train, _ = sentiment_files
    recipe = _recipe(tmp_path, tiny_ckpt, _task("sentiment", "classification", train) + f'''
[distill]
teachers = ["{tiny_hf_dir}"]
''')
    with pytest.raises(FinetuneError, match="vocabulary"):
        FinetuneTrainer(load_finetune_recipe(recipe)).run()


def test_lm_distillation_learns_the_teachers_next_token_distributions(tmp_path, tiny_ckpt, jsonl):
    from gpt2 import GPT2, GPT2Config
    from gpt2.loading import load_tokenizer

    small = tmp_path / "small"
    GPT2(GPT2Config(vocab_size=8192, n_ctx=64, n_embd=16, n_layer=1, n_head=2)).save_pretrained(small)
    load_tokenizer(tiny_ckpt).save_pretrained(small)
    texts = jsonl(tmp_path / "lm.jsonl", [{"text": f"line {i} of the text, said the teacher."} for i in range(16)])
    recipe = _recipe(tmp_path, small, _task("mine", "lm", texts) + f'''
[distill]
teachers = ["{tiny_ckpt}"]
alpha = 1.0
''')
    FinetuneTrainer(load_finetune_recipe(recipe, ["train.max_steps=4", "optim.lr=1e-2"])).run()
    distill = [r["distill_loss"] for r in _metrics(tmp_path / "run") if "loss" in r]
    assert len(distill) == 4 and distill[-1] < distill[0]


def test_instruction_tuning_saves_a_chat_model(tmp_path, tiny_ckpt, capsys):
    import transformers

    chat = tmp_path / "chat.jsonl"
    lines = (Path(__file__).parents[2] / "src/gpt2/assets/tasks/chat.train.jsonl").read_text().splitlines()[:16]
    chat.write_text("\n".join(lines) + "\n")
    recipe = _recipe(tmp_path, tiny_ckpt, _task("chat", "instruct", chat))
    FinetuneTrainer(load_finetune_recipe(recipe, ["train.max_steps=2"])).run()
    final = tmp_path / "run" / "final"
    from gpt2.finetune.instruct import encode_prompt
    from gpt2.loading import load_tokenizer

    ours = load_tokenizer(final)
    assert ours.chat_template and "<|im_start|>" in ours.special_tokens
    messages = [{"role": "user", "content": "Hello there"}]
    theirs = transformers.AutoTokenizer.from_pretrained(final)
    ids = theirs.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    ids = ids["input_ids"] if hasattr(ids, "keys") else ids
    assert encode_prompt(ours, messages) == list(ids)
    lm = transformers.GPT2LMHeadModel.from_pretrained(final)
    assert lm.config.vocab_size == ours.vocab_size
    # gpt2 generate --chat: the template's prompt, greedy, the same tokens as from Python
    from gpt2 import generate
    from gpt2.cli.main import main

    capsys.readouterr()
    assert main(["generate", "--model", str(final), "--chat", "Hello there", "--json", "--temperature", "0",
                 "--max-new-tokens", "8"]) == 0
    got = json.loads(capsys.readouterr().out)
    model = load_task_model(final).lm
    end = ours.special_tokens["<|im_end|>"]
    (expected,) = generate(model, ours, encode_prompt(ours, messages), temperature=0, max_new_tokens=8,
                           stop_token_ids=(ours.eot_token, end))
    assert got["prompt_tokens"] == encode_prompt(ours, messages) and got["tokens"] == expected.tokens


def test_predict_and_eval_on_a_fine_tuned_classifier(tmp_path, tiny_ckpt, sentiment_files, capsys):
    from gpt2.cli.main import main

    train, valid = sentiment_files
    recipe = _recipe(tmp_path, tiny_ckpt, _task("sentiment", "classification", train))
    assert main(["finetune", recipe, "train.max_steps=3"]) == 0
    final = str(tmp_path / "run" / "final")
    capsys.readouterr()
    assert main(["predict", "--model", final, "--data", valid, "--json", "--batch-size", "5"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(lines) == 16 and all(x["label"] in ("neg", "pos") for x in lines)
    assert all(abs(sum(x["probabilities"].values()) - 1) < 1e-5 for x in lines)
    # the same predictions through the Python API, in the same order
    from gpt2.finetune.data import read_task
    from gpt2.finetune.predict import predict, score
    from gpt2.finetune.tasks import TaskTokens
    from gpt2.loading import load_tokenizer

    model, tok = load_task_model(final), load_tokenizer(final)
    data = read_task(valid, "classification", tok, TaskTokens.of(tok), 64, labels=["neg", "pos"])
    preds = predict(model, "sentiment", data.examples, pad_id=tok.eot_token)
    assert [["neg", "pos"][p.index] for p in preds] == [x["label"] for x in lines]
    expected = score(model, "sentiment", preds, data.examples)
    out = tmp_path / "eval.json"
    assert main(["eval", "--model", final, "--task", "classification", "--data", valid, "--json", str(out),
                 "--no-progress"]) == 0
    report = json.loads(out.read_text())
    report = report[0] if isinstance(report, list) else report
    got = {m["metric"]: m["value"] for m in (report.get("results", [report])[0]["metrics"])}
    assert got == pytest.approx(expected)
    import sklearn.metrics

    gold = [e.label for e in data.examples]
    assert got["accuracy"] == pytest.approx(sklearn.metrics.accuracy_score(gold, [p.index for p in preds]))


def test_a_second_stage_starts_each_task_from_its_multi_task_head(tmp_path, tiny_ckpt, sentiment_files, jsonl):
    """MT-DNN's second stage: fine-tuning from a multi-task checkpoint keeps the task's head."""
    train, _ = sentiment_files
    mc = jsonl(tmp_path / "mc.jsonl", [{"context": f"c {i}", "choices": ["a", "b"], "label": i % 2} for i in range(8)])
    sentiment = _task("sentiment", "classification", train)
    tasks = sentiment + _task("story", "multiple_choice", mc)
    FinetuneTrainer(load_finetune_recipe(_recipe(tmp_path, tiny_ckpt, tasks), ["train.max_steps=2"])).run()
    multi = load_task_model(tmp_path / "run" / "final")
    second = _recipe(tmp_path, tmp_path / "run" / "final", sentiment)
    trainer = FinetuneTrainer(load_finetune_recipe(second, [f"run_dir={tmp_path / 'stage2'}"]))
    trainer.setup()
    assert list(trainer.model.tasks) == ["sentiment"]
    assert torch.equal(trainer.model.heads["sentiment"].score.weight, multi.heads["sentiment"].score.weight)
    assert trainer.model.config.vocab_size == multi.config.vocab_size  # the task tokens are not added twice
