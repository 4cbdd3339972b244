"""The one place that decides where tensors live: CUDA when present, else CPU, with the reason."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DeviceChoice:
    device: torch.device
    reason: str

    def __str__(self) -> str:
        return f"{self.device} ({self.reason})"


def choose_device(prefer: str | None = None) -> DeviceChoice:
    """CUDA if available (or ``prefer``/``EXPLORER_DEVICE`` says so), else CPU; says why."""
    prefer = prefer or os.environ.get("EXPLORER_DEVICE")
    if prefer:
        if prefer.startswith("cuda") and not torch.cuda.is_available():
            return DeviceChoice(torch.device("cpu"), f"{prefer} requested but CUDA is not available")
        return DeviceChoice(torch.device(prefer), "requested")
    if torch.cuda.is_available():
        return DeviceChoice(torch.device("cuda"), f"CUDA: {torch.cuda.get_device_name(0)}")
    return DeviceChoice(torch.device("cpu"), "no CUDA device found")
