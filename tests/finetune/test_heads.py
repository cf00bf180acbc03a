"""The task heads against transformers' GPT2ForSequenceClassification and GPT2DoubleHeadsModel,
the two padding traps, and checkpoints that round-trip."""

from __future__ import annotations

import pytest
import torch

from gpt2 import GPT2
from gpt2.finetune.batching import collate
from gpt2.finetune.checkpoint import load_task_model, save_task_model
from gpt2.finetune.model import TaskInfo, TaskModel
from gpt2.finetune.tasks import Example

PAD = 299  # plays <|endoftext|>: the pad id the checkpoint declares
EXTRACT = 298


def _sequences(n: int, seed: int, end: int = EXTRACT) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(3, 20, (n,), generator=g).tolist()
    return [torch.randint(0, 290, (k,), generator=g).tolist() + [end] for k in lengths]


def _model(tiny_hf_dir, tasks: list[TaskInfo]) -> TaskModel:
    torch.manual_seed(1)
    model = TaskModel(GPT2.from_pretrained(tiny_hf_dir), tasks, head_dropout=0.1)
    return model.eval()


def _hf_batch(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    T = max(map(len, rows))
    ids = torch.full((len(rows), T), PAD)
    mask = torch.zeros(len(rows), T, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return ids, mask


def test_classifier_equals_transformers_sequence_classification(tiny_hf_dir, tmp_path):
    import transformers

    model = _model(tiny_hf_dir, [TaskInfo("sentiment", "classification", ["neg", "neu", "pos"])])
    rows = _sequences(5, seed=0)
    batch = collate([Example([r], 0) for r in rows], pad_id=PAD)
    with torch.no_grad():
        ours, _ = model("sentiment", batch)
    save_task_model(model, tmp_path / "clf", pad_token_id=PAD)
    hf = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "clf").eval()
    assert isinstance(hf, transformers.GPT2ForSequenceClassification)
    assert hf.config.id2label == {0: "neg", 1: "neu", 2: "pos"} and hf.config.pad_token_id == PAD
    ids, mask = _hf_batch(rows)
    with torch.no_grad():
        theirs = hf(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
    # and our own loader gives the same model back
    again = load_task_model(tmp_path / "clf")
    assert again.tasks["sentiment"].labels == ["neg", "neu", "pos"]
    with torch.no_grad():
        torch.testing.assert_close(again("sentiment", batch)[0], ours, atol=0, rtol=0)


def test_left_and_right_padding_and_no_padding_agree(tiny_hf_dir):
    model = _model(tiny_hf_dir, [TaskInfo("t", "classification", [0, 1])])
    rows = _sequences(6, seed=2)
    examples = [Example([r], 1) for r in rows]
    with torch.no_grad():
        right, _ = model("t", collate(examples, pad_id=PAD))
        left, _ = model("t", collate(examples, pad_id=PAD, left_pad=True))
        alone = torch.cat([model("t", collate([e], pad_id=PAD))[0] for e in examples])
    torch.testing.assert_close(right, alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(left, alone, atol=1e-5, rtol=0)


def test_left_padding_without_position_ids_would_shift_outputs(tiny_hf_dir):
    """The trap the batcher's position ids avoid: the same batch without them differs."""
    model = _model(tiny_hf_dir, [TaskInfo("t", "classification", [0, 1])])
    batch = collate([Example([r], 0) for r in _sequences(4, seed=3)], pad_id=PAD, left_pad=True)
    with torch.no_grad():
        good, _ = model("t", batch)
        batch.position_ids = None
        shifted, _ = model("t", batch)
    assert (good - shifted).abs().max() > 1e-3


def test_a_sequence_ending_in_the_pad_id_is_pooled_at_its_true_end(tiny_hf_dir):
    """With extract = <|endoftext|> = pad (new_tokens = false), pooling by length is exact;
    transformers' rule (rightmost token that is not the pad id) pools one token early."""
    import transformers

    model = _model(tiny_hf_dir, [TaskInfo("t", "classification", ["a", "b"])])
    rows = _sequences(3, seed=4, end=PAD)
    batch = collate([Example([r], 0) for r in rows], pad_id=PAD)
    with torch.no_grad():
        ours, _ = model("t", batch)
        alone = torch.cat([model("t", collate([Example([r], 0)], pad_id=PAD))[0] for r in rows])
    torch.testing.assert_close(ours, alone, atol=1e-5, rtol=0)
    hf = transformers.GPT2ForSequenceClassification(
        transformers.GPT2Config.from_pretrained(tiny_hf_dir, num_labels=2, pad_token_id=PAD))
    hf.transformer.load_state_dict(transformers.GPT2Model.from_pretrained(tiny_hf_dir).state_dict())
    hf.score.weight.data = model.heads["t"].score.weight.data.clone()
    ids, mask = _hf_batch(rows)
    with torch.no_grad():
        theirs = hf.eval()(input_ids=ids, attention_mask=mask).logits
    assert (theirs - ours).abs().max() > 1e-3


def test_multiple_choice_equals_transformers_double_heads(tiny_hf_dir, tmp_path):
    import transformers

    model = _model(tiny_hf_dir, [TaskInfo("story", "multiple_choice")])
    n_choices = 3
    examples = [Example(_sequences(n_choices, seed=10 + i), label=i % n_choices) for i in range(4)]
    batch = collate(examples, pad_id=PAD)
    with torch.no_grad():
        ours, _ = model("story", batch)
    assert ours.shape == (4, n_choices)
    save_task_model(model, tmp_path / "mc", pad_token_id=PAD)
    hf = transformers.GPT2DoubleHeadsModel.from_pretrained(tmp_path / "mc").eval()
    ids = batch.input_ids.view(4, n_choices, -1)
    mask = (torch.arange(ids.shape[-1]) <= batch.extract.view(4, n_choices, 1)).long()
    with torch.no_grad():
        out = hf(input_ids=ids, attention_mask=mask, mc_token_ids=batch.extract.view(4, n_choices))
    torch.testing.assert_close(ours, out.mc_logits, atol=1e-5, rtol=0)
    with torch.no_grad():
        torch.testing.assert_close(load_task_model(tmp_path / "mc")("story", batch)[0], ours, atol=0, rtol=0)


def test_similarity_adds_both_orderings(tiny_hf_dir, tmp_path):
    model = _model(tiny_hf_dir, [TaskInfo("sts", "similarity", regression=True)])
    a, b = _sequences(2, seed=20)
    pair = Example([a, b], 0.5)
    with torch.no_grad():
        both, _ = model("sts", collate([pair], pad_id=PAD))
        h = model.lm.hidden_states
        summed = h(torch.tensor([a]))[0, -1] + h(torch.tensor([b]))[0, -1]
        expected = model.heads["sts"].score(summed)
    assert both.shape == (1,)
    torch.testing.assert_close(both, expected, atol=1e-5, rtol=0)
    save_task_model(model, tmp_path / "sts", pad_token_id=PAD)
    with torch.no_grad():
        torch.testing.assert_close(load_task_model(tmp_path / "sts")("sts", collate([pair], pad_id=PAD))[0], both)


def test_multi_task_checkpoint_round_trips_and_transformers_reads_its_body(tiny_hf_dir, tmp_path):
    import transformers

    tasks = [TaskInfo("a", "classification", ["x", "y"]), TaskInfo("b", "multiple_choice"),
             TaskInfo("c", "similarity", regression=True)]
    model = _model(tiny_hf_dir, tasks)
    save_task_model(model, tmp_path / "mt", pad_token_id=PAD)
    again = load_task_model(tmp_path / "mt")
    assert list(again.tasks) == ["a", "b", "c"]
    for key, value in model.state_dict().items():
        assert torch.equal(again.state_dict()[key], value), key
    lm = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "mt").eval()
    ids = torch.tensor([_sequences(1, seed=30)[0]])
    with torch.no_grad():
        torch.testing.assert_close(lm(ids).logits, model.lm(ids), atol=1e-5, rtol=0)


def test_losses_cross_entropy_mse_and_auxiliary_lm(tiny_hf_dir):
    model = _model(tiny_hf_dir, [TaskInfo("t", "classification", ["a", "b"]),
                                 TaskInfo("r", "similarity", regression=True)])
    rows = _sequences(3, seed=40)
    batch = collate([Example([r], i % 2) for i, r in enumerate(rows)], pad_id=PAD)
    with torch.no_grad():
        logits, lm_logits = model("t", batch, lm_logits=True)
    ce = torch.nn.functional.cross_entropy(logits, batch.labels)
    lm = torch.nn.functional.cross_entropy(lm_logits.flatten(0, 1), batch.lm_targets.flatten(), ignore_index=-100)
    with torch.no_grad():
        total, parts = model.loss("t", batch, lm_weight=0.5)
    torch.testing.assert_close(total, ce + 0.5 * lm)
    assert parts == pytest.approx({"task_loss": ce.item(), "lm_loss": lm.item()})
    only, parts = model.loss("t", batch, lm_weight=0.0)
    torch.testing.assert_close(only, ce)
    assert parts.keys() == {"task_loss"}
    pairs = collate([Example([a, b], 0.25) for a, b in zip(rows, rows[1:])], pad_id=PAD)
    mse, _ = model.loss("r", pairs)
    torch.testing.assert_close(mse, torch.nn.functional.mse_loss(model("r", pairs)[0], pairs.labels))
    # lm targets: the next token on real positions, ignored on padding and at the last token
    for row, ids, targets in zip(rows, batch.input_ids, batch.lm_targets):
        assert targets[: len(row) - 1].tolist() == row[1:]
        assert (targets[len(row) - 1 :] == -100).all()


def test_a_classifier_transformers_saved_with_default_labels_loads(tiny_hf_dir, tmp_path):
    import transformers

    config = transformers.GPT2Config.from_pretrained(tiny_hf_dir, pad_token_id=PAD)
    hf = transformers.GPT2ForSequenceClassification(config).eval()
    hf.save_pretrained(tmp_path / "clf")
    ours = load_task_model(tmp_path / "clf")
    (info,) = ours.tasks.values()
    assert info.labels == ["LABEL_0", "LABEL_1"]
    rows = _sequences(3, seed=50)
    ids, mask = _hf_batch(rows)
    with torch.no_grad():
        torch.testing.assert_close(ours(info.name, collate([Example([r]) for r in rows], pad_id=PAD))[0],
                                   hf(input_ids=ids, attention_mask=mask).logits, atol=1e-5, rtol=0)
