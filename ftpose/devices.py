"""Turning a device name from the user (``cpu``, ``cuda``, ``cuda:1``, ``mps``) into a torch device.

``torch.device("gpu")`` fails with a list of twenty device types, and ``cuda`` on a
CPU-only build of torch fails only when the first tensor moves, forty lines deep;
:func:`parse_device` checks the name and that the device exists here before anything
is built, with a one-line :class:`DeviceError` that says what would work.
"""
from __future__ import annotations

import torch

ALIASES = {"gpu": "cuda"}
"""Names people type for a device torch calls otherwise."""


class DeviceError(ValueError):
    """The requested device does not exist or cannot be used here; ``str()`` says what can."""


def parse_device(name) -> torch.device:
    """``name`` (or a ``torch.device``) as a device that this machine has."""
    if isinstance(name, torch.device):
        device = name
    else:
        text = str(name).strip().lower()
        try:
            device = torch.device(text)
        except RuntimeError:
            kind, _, index = text.partition(":")
            hint = f"; did you mean '{ALIASES[kind]}{':' + index if index else ''}'?" if kind in ALIASES else ""
            raise DeviceError(f"unknown device {name!r}: use cpu, cuda, cuda:N or mps{hint}") from None
    if device.type == "cuda":
        if torch.version.cuda is None:
            raise DeviceError(f"device {name!r}: this build of torch ({torch.__version__}) has no CUDA support; "
                              "use --device cpu or install a CUDA build of torch")
        count = torch.cuda.device_count()
        if count == 0:
            raise DeviceError(f"device {name!r}: torch has CUDA {torch.version.cuda} but sees no GPU here; "
                              "use --device cpu")
        if device.index is not None and device.index >= count:
            raise DeviceError(f"device {name!r}: there are only {count} GPU(s) here (cuda:0 to cuda:{count - 1})")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"device {name!r}: Apple's MPS is not available on this machine; use --device cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"device {name!r}: ftpose runs on cpu, cuda or mps")
    return device
