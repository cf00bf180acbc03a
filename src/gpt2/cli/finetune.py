"""`gpt2 finetune RECIPE.toml [section.key=value ...]`: adapt a pre-trained model to labelled tasks.

GPT-1's recipe: each task's input becomes one token sequence ([start] text [extract], ...), a
small head reads the extract token's final state, and the whole model trains on the task loss
plus 0.5 x the language-model loss. Several [[tasks]] train one shared body with a head each
(MT-DNN); [lora] trains low-rank adapters only; [distill] learns from teachers' soft targets.
The fine-tuned model lands in RUN_DIR/final. Run the same command again to resume.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "finetune", help="fine-tune a model on labelled tasks (classification, pairs, choices, lm, chat)",
        description=__doc__.split("\n\n")[0],
        epilog="Overrides use dotted keys, with or without a leading --: optim.lr=1e-4 train.epochs=1 "
               "run_dir=runs/x. Recipes: configs/finetune-*.toml. Ranges: src/gpt2/finetune/config.py.",
    )
    p.add_argument("config", metavar="RECIPE.toml", help="a fine-tuning recipe, e.g. configs/finetune-authorship.toml")
    p.add_argument("overrides", nargs=argparse.REMAINDER, metavar="section.key=value",
                   help="override recipe values")
    p.set_defaults(func=run, keep_going_without_stdout=True)


def run(args: argparse.Namespace) -> int:
    from ..finetune.config import load_finetune_recipe

    overrides = [o.removeprefix("--") for o in args.overrides]
    config = load_finetune_recipe(args.config, overrides)  # a bad recipe costs no torch import
    from ..finetune.trainer import finetune

    result = finetune(config)
    if result.stop_signal == "SIGINT":
        raise KeyboardInterrupt
    return 0 if result.step > 0 else 1
