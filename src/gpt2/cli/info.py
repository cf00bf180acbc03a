"""`gpt2 info NAME_OR_DIR`: a model's config and parameter count, offline.

NAME is `demo` (the bundled demo model), a preset (gpt2, gpt2-medium, gpt2-large, gpt2-xl, the
small CPU ones, or a hub alias such as openai-community/gpt2); DIR is a checkpoint directory,
whose weights files are checked against its config.json from their headers (no tensor data is
read): missing, corrupt or truncated weights and shapes that disagree with config.json are
errors. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import CheckpointError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "info",
        help="show a model's config and parameter count (offline)",
        description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
    )
    p.add_argument("model", metavar="NAME_OR_DIR",
                   help="demo (the bundled demo model), a preset name or a checkpoint directory")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.set_defaults(func=run)


def model_info(name_or_dir: str) -> dict:
    """Config, parameter counts and (for a directory) weights files of a model, as a dict."""
    from ..checkpoint import DEMO_NAME, inspect_checkpoint, quantization_config, resolve_checkpoint
    from ..config import GPT2Config, preset_names
    from ..errors import ConfigError

    path = Path(name_or_dir).expanduser()
    files: list[Path] = []
    quantized = None
    if path.exists() or name_or_dir == DEMO_NAME:
        directory = resolve_checkpoint(name_or_dir)  # a local directory: never downloads
        if quantization_config(directory) is None:
            config, files = inspect_checkpoint(directory)
        else:
            from ..quantize import inspect_quantized

            config, files, method, group = inspect_quantized(directory)
            quantized = method + (f", groups of {group}" if group else "")
        source = "demo" if name_or_dir == DEMO_NAME and not path.exists() else str(directory)
    else:
        try:
            config = GPT2Config.preset(name_or_dir)
        except ConfigError:
            raise CheckpointError(
                f"{name_or_dir}: not a checkpoint directory nor a preset "
                f"({', '.join([DEMO_NAME, *preset_names()])})"
            ) from None
        source = "preset"
    return {
        "model": name_or_dir,
        "source": source,
        "config": config.to_dict(),
        "parameters": config.num_parameters(),
        "non_embedding_parameters": config.num_parameters(exclude_embeddings=True),
        "weights_files": [{"file": f.name, "bytes": f.stat().st_size} for f in files],
        "quantized": quantized,
    }


def run(args: argparse.Namespace) -> int:
    info = model_info(args.model)
    if args.json:
        print(json.dumps(info))
        return 0
    print(f"model        {info['model']} ({info['source']})")
    for key, value in info["config"].items():
        print(f"  {key:<20} {value}")
    print(f"parameters   {info['parameters']:,} (tied head; {info['non_embedding_parameters']:,} "
          "without embeddings)")
    for f in info["weights_files"]:
        print(f"weights      {f['file']} ({f['bytes'] / 2**20:,.1f} MiB)")
    if info["quantized"]:
        print(f"quantized    {info['quantized']} (weight-only; gpt2 quantize)")
    return 0
