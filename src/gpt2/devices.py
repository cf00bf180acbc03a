"""Device names: the one place that turns "cpu", "cuda:1", "mps" into a torch.device that exists."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import UsageError

if TYPE_CHECKING:
    import torch


def available_devices() -> list[str]:
    """The devices this machine has, e.g. ['cpu', 'cuda:0', 'cuda:1']."""
    import torch

    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        names.append("mps")
    return names


def parse_device(name: "str | torch.device", what: str = "device") -> "torch.device":
    """`name` as a torch.device this machine has; else a UsageError naming the devices there are."""
    import torch

    here = ", ".join(available_devices())
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise UsageError(f"{what} {str(name)!r} is not a device name; devices here: {here}") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"{what} {str(name)!r}: CUDA is not available on this machine; "
                             f"devices here: {here}")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(f"{what} {str(name)!r}: no such GPU; devices here: {here}")
        return device
    if device.type == "mps" and "mps" in here:
        return device
    raise UsageError(f"{what} {str(name)!r} is not available on this machine; devices here: {here}")
