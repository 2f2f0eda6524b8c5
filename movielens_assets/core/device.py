"""The one parser of torch device strings (`MOVIELENS_DEVICE`: auto | cpu | cuda | cuda:N | mps).

`parse_device` validates and normalises the text (no torch import: settings and the code location stay
light); `resolve_device` turns it into the concrete device of this machine: `auto` picks cuda when
available, else mps (Apple silicon), else cpu. An explicit device this machine does not have is an
error naming the setting, not a silent fall-back to the CPU.
"""

from __future__ import annotations

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
"""The documented forms, plus `cuda:N` (N = a CUDA device index)."""


def parse_device(value: str | None, name: str = "MOVIELENS_DEVICE") -> str:
    """`auto`, `cpu`, `cuda`, `cuda:N` or `mps`, lower-cased and stripped (empty -> `auto`).

    ValueError naming `name` and the expected forms otherwise."""
    v = (value or "").strip().lower() or "auto"
    if v in DEVICE_CHOICES or (v.startswith("cuda:") and v[5:].isdigit()):
        return v
    raise ValueError(f"{name} must be one of auto, cpu, cuda, cuda:N, mps; got {value!r}")


def resolve_device(value: str | None = "auto", name: str = "MOVIELENS_DEVICE") -> str:
    """The concrete torch device string for `value` on this machine (ValueError when it lacks it)."""
    import torch

    v = parse_device(value, name)
    cuda = torch.cuda.is_available()
    mps_backend = getattr(torch.backends, "mps", None)
    mps = bool(mps_backend is not None and mps_backend.is_available())
    if v == "auto":
        return "cuda" if cuda else ("mps" if mps else "cpu")
    if v.startswith("cuda"):
        if not cuda:
            raise ValueError(f"{name}={value}: CUDA is not available on this machine "
                             "(torch.cuda.is_available() is False); use auto or cpu")
        index = int(v.split(":")[1]) if ":" in v else 0
        if index >= torch.cuda.device_count():
            raise ValueError(f"{name}={value}: only {torch.cuda.device_count()} CUDA device(s)")
        return v
    if v == "mps" and not mps:
        raise ValueError(f"{name}={value}: MPS is not available on this machine; use auto or cpu")
    return v
