"""The processor pipeline: every processor is one option, one function and one entry, and
`gpt2 generate` takes its flag from the option; a processor added here (a toy) reaches the
pipeline, the checks and the flags with nothing else changed. Also: the options object as the
API of generate/stream."""

from __future__ import annotations

import argparse
import dataclasses

import pytest
import torch

from gpt2 import GPT2, GPT2Config, UsageError
from gpt2.cli.generate import _options, add_option_flags
from gpt2.generation import PROCESSORS, Processor, SamplingOptions, choose_tokens, generate, process_logits, stream
from gpt2.generation import processors as pipeline
from gpt2.generation.options import numeric_options, option
from gpt2.generation.processors import Scores, apply_top_k, apply_top_p
from gpt2.tokenizer import Tokenizer


def generate_parser() -> argparse.ArgumentParser:
    from gpt2.cli.main import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["generate"]


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


# --------------------------------------------------------------------------- every processor declared once


def test_every_processor_has_an_option_a_flag_and_a_bad_input_row():
    from tests.bad_input.cases_generate import CASES

    fields = {o.name: o for o in numeric_options(SamplingOptions)}
    flags = {max(a.option_strings, key=len): a for a in generate_parser()._actions if a.option_strings}
    rows = {arg for case in CASES for arg in case.argv if arg.startswith("--")}
    assert [p.option for p in PROCESSORS] == ["repetition_penalty", "temperature", "top_k", "top_p"]
    for p in PROCESSORS:
        o = fields[p.option]  # a numeric option with a declared range
        action = flags[flag(p.option)]
        assert o.help in action.help and o.bounds() in action.help and action.metavar == o.metavar
        assert flag(p.option) in rows, f"{p.option}: no bad-input row"
        if o.note and o.note.endswith("= off"):  # the value the option calls off switches it off
            assert not p.active(type(o.default)(o.note.split(" = ")[0]))


def test_every_numeric_option_is_a_flag_with_its_range():
    from gpt2.settings import numeric_ranges

    assert None not in numeric_ranges(SamplingOptions).values()  # the config dialect's ranges
    flags = {a.dest: a for a in generate_parser()._actions}
    for o in numeric_options(SamplingOptions):
        parse = flags[o.name].type
        low, high = o.range.low, o.range.high
        if not o.range.low_open:
            assert parse(str(low)) == low
        with pytest.raises(argparse.ArgumentTypeError):
            parse(str(low - 1))
        if high != float("inf"):
            assert parse(str(high)) == high
            with pytest.raises(argparse.ArgumentTypeError):
                parse(str(high + 1))


# --------------------------------------------------------------------------- a toy processor


def ban_token(s: Scores, token: int) -> Scores:
    """The toy: `token` is never chosen."""
    ids = torch.arange(s.logits.shape[-1]).expand_as(s.logits) if s.ids is None else s.ids
    return s.with_logits(s.logits.masked_fill(ids == token, float("-inf")))


@dataclasses.dataclass(frozen=True)
class ToyOptions(SamplingOptions):
    ban: int = option(-1, -1, 50256, help="a token id never to choose", metavar="ID", note="-1 = off")


TOY = Processor("ban", ban_token, active=lambda t: t >= 0, greedy=True)


@pytest.fixture
def with_toy(monkeypatch):
    monkeypatch.setattr(pipeline, "PROCESSORS", [TOY, *PROCESSORS])


@pytest.mark.parametrize("where", ["first", "last"])
def test_a_toy_processor_is_one_option_one_function_one_entry(monkeypatch, where):
    entries = [TOY, *PROCESSORS] if where == "first" else [*PROCESSORS, TOY]
    monkeypatch.setattr(pipeline, "PROCESSORS", entries)
    logits = torch.tensor([[0.0, 5.0, 4.0, 1.0]])
    # The pipeline runs it, greedy and sampling, on the whole vocabulary (first) or on the
    # columns top-k narrowed the scores to (last).
    assert choose_tokens(logits, ToyOptions(temperature=0)).item() == 1
    assert choose_tokens(logits, ToyOptions(temperature=0, ban=1)).item() == 2
    g = [torch.Generator().manual_seed(0)]
    draws = {choose_tokens(logits, ToyOptions(ban=1, top_k=2), None, g).item() for _ in range(50)}
    assert draws == ({2} if where == "last" else {2, 3})  # last: top-k kept 1 and 2, then 1 went
    assert process_logits(logits, ToyOptions(ban=2, top_k=3)).isinf().tolist() == [
        [False, False, True, False] if where == "first" else [True, False, True, False]]
    # Its range is checked like every other option's ...
    with pytest.raises(UsageError, match=r"ban must be an integer in \[-1, 50256\] \(-1 = off\), got -2"):
        ToyOptions(ban=-2)
    # ... and the command line gets its flag, with its range and help, and passes it on.
    parser = argparse.ArgumentParser(exit_on_error=False)
    parser.add_argument("--interactive", action="store_true")
    parser.add_argument("--unconditional", action="store_true")
    parser.add_argument("--chat", action="store_true")
    parser.add_argument("prompt", nargs="?")
    add_option_flags(parser, ToyOptions)
    action = next(a for a in parser._actions if a.dest == "ban")
    assert action.option_strings == ["--ban"]
    assert action.help == "a token id never to choose, -1 to 50256; -1 = off (default -1)"
    assert _options(parser.parse_args(["x", "--ban", "7"]), ToyOptions).ban == 7
    with pytest.raises(argparse.ArgumentError, match="out of range"):
        parser.parse_args(["x", "--ban", "-2"])


def test_the_toy_reaches_generate(with_toy):
    torch.manual_seed(0)
    model, tok = GPT2(GPT2Config(n_layer=1, n_head=1, n_embd=8, n_ctx=16)).eval(), Tokenizer.from_pretrained("gpt2")
    first = generate(model, tok, "Hi", ToyOptions(max_new_tokens=1, temperature=0, stop_token_ids=()))[0].tokens[0]
    again = generate(model, tok, "Hi", ToyOptions(max_new_tokens=1, temperature=0, stop_token_ids=(), ban=first))
    assert again[0].tokens[0] != first


# --------------------------------------------------------------------------- top-k's narrowing


def test_top_k_narrows_only_without_ties():
    """Top-k hands the later processors k columns, unless logits tie with the k-th: then the
    whole vocabulary with -inf, as apply_top_k does; either way the same tokens survive."""
    no_ties = Scores(torch.tensor([[1.0, 5.0, 3.0, 4.0, 2.0]]))
    s = pipeline.top_k(no_ties, 2)
    assert s.ids.tolist() == [[1, 3]] and s.logits.tolist() == [[5.0, 4.0]]
    ties = Scores(torch.tensor([[0.0, 2.0, 2.0, 2.0, 1.0]]))
    s = pipeline.top_k(ties, 2)
    assert s.ids is None and torch.equal(s.logits, apply_top_k(ties.logits, 2))
    # top-p on the k candidates keeps what it keeps on the whole vocabulary.
    for scores in (no_ties, ties):
        opts = SamplingOptions(top_k=3, top_p=0.7)
        expected = apply_top_p(apply_top_k(scores.logits, 3), 0.7)
        assert torch.equal(process_logits(scores.logits, opts).isinf(), expected.isinf())


# --------------------------------------------------------------------------- options as the API


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(1)
    return GPT2(GPT2Config(n_layer=1, n_head=2, n_embd=16, n_ctx=32)).eval(), Tokenizer.from_pretrained("gpt2")


def test_options_object_and_keywords_are_the_same(tiny):
    model, tok = tiny
    opts = SamplingOptions(max_new_tokens=8, top_k=5, seed=3, n_samples=2)
    by_object = generate(model, tok, ["Hi", "Yo"], opts)
    by_keywords = generate(model, tok, ["Hi", "Yo"], max_new_tokens=8, top_k=5, seed=3, n_samples=2)
    overridden = generate(model, tok, ["Hi", "Yo"], dataclasses.replace(opts, seed=4), seed=3)
    assert [s.tokens for s in by_object] == [s.tokens for s in by_keywords] == [s.tokens for s in overridden]
    s = stream(model, tok, "Hi", opts, sample_index=1)
    assert "".join(s) == by_object[1].text and s.sample.tokens == by_object[1].tokens


def test_an_unknown_option_is_named(tiny):
    model, tok = tiny
    with pytest.raises(TypeError, match=r"generate\(\) got an unexpected keyword argument 'top_q'"):
        generate(model, tok, "Hi", top_q=0.5)
    with pytest.raises(TypeError, match=r"stream\(\) got an unexpected keyword argument 'temprature'"):
        stream(model, tok, "Hi", temprature=0.5)
    with pytest.raises(TypeError, match="options must be a SamplingOptions, got dict"):
        generate(model, tok, "Hi", {"top_k": 5})
