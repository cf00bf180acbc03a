"""`gpt2 train CONFIG.toml [section.key=value | --section.key=value ...]`: pretrain or continue training.

Run it again with the same config to resume from the newest valid checkpoint in run_dir.
Under torchrun (`torchrun --nproc_per_node=8 -m gpt2.cli.main train CONFIG`) every process
trains its share of each batch (DDP, or FSDP2 with train.distributed=fsdp).
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="pretrain or continue training a model", description=__doc__.split("\n\n")[0],
        epilog="Overrides use dotted keys, with or without a leading --: optim.lr=3e-4 --train.max_steps=100 run_dir=runs/x",
    )
    p.add_argument("config", metavar="CONFIG.toml", help="a recipe, e.g. configs/demo.toml")
    # REMAINDER: every argument after the recipe is an override, --section.key=value included
    # (argparse would otherwise take that form for an unknown option).
    p.add_argument("overrides", nargs=argparse.REMAINDER, metavar="section.key=value",
                   help="override config values")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..train.config import load_config
    from ..train.trainer import train

    overrides = [o.removeprefix("--") for o in args.overrides]
    result = train(load_config(args.config, overrides))
    return 0 if result.step > 0 else 1
