"""`gpt2 train CONFIG.toml [section.key=value | --section.key=value ...]`: pretrain or continue training.

Run it again with the same config to resume from the newest valid checkpoint in run_dir.
Under torchrun (`torchrun --nproc_per_node=8 -m gpt2.cli.main train CONFIG`) every process
trains its share of each batch (DDP, or FSDP2 with train.distributed=fsdp).

The log goes to stdout and to RUN_DIR/train.log; if stdout goes away (`| head`, a closed
terminal) training goes on. Ctrl-C finishes the step, saves a checkpoint and exits with 130;
SIGTERM does the same and exits with 0 (a scheduler's stop, not a failure).
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="pretrain or continue training a model", description=__doc__.split("\n\n")[0],
        epilog="Overrides use dotted keys, with or without a leading --: optim.lr=3e-4 --train.max_steps=100 "
               "run_dir=runs/x. Every numeric setting has a range (src/gpt2/train/config.py); resuming with "
               "a changed optimizer, batch or seed setting needs train.allow_config_change=true.",
    )
    p.add_argument("config", metavar="CONFIG.toml", help="a recipe, e.g. configs/demo.toml")
    # REMAINDER: every argument after the recipe is an override, --section.key=value included
    # (argparse would otherwise take that form for an unknown option).
    p.add_argument("overrides", nargs=argparse.REMAINDER, metavar="section.key=value",
                   help="override config values")
    # A run must survive its stdout going away: its log is in the run directory too.
    p.set_defaults(func=run, keep_going_without_stdout=True)


def run(args: argparse.Namespace) -> int:
    from ..train.config import load_recipe

    overrides = [o.removeprefix("--") for o in args.overrides]
    config = load_recipe(args.config, overrides)  # a bad recipe costs no torch import
    from ..train.trainer import train

    result = train(config)
    if result.stop_signal == "SIGINT":  # saved; main reports "interrupted" and exits 130
        raise KeyboardInterrupt
    return 0 if result.step > 0 else 1
