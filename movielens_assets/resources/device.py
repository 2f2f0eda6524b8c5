"""The torch device every torch step runs on (`MOVIELENS_DEVICE`: auto | cpu | cuda | mps).

`auto` picks cuda when available, else mps (Apple silicon), else cpu. An explicit device that this
machine does not have is an error naming the variable, not a silent fall-back to the CPU.
torch is imported only when the device is resolved (the code location stays light).
"""


import dagster as dg

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def validate_device(value: str) -> str:
    """`auto`, `cpu`, `cuda`, `cuda:N` or `mps` (lower-cased); ValueError otherwise."""
    v = (value or "auto").strip().lower()
    if v in DEVICE_CHOICES or (v.startswith("cuda:") and v[5:].isdigit()):
        return v
    raise ValueError(f"MOVIELENS_DEVICE must be one of auto, cpu, cuda, cuda:N, mps; got {value!r}")


def resolve_device(value: str) -> str:
    """The concrete torch device string for `value` on this machine."""
    import torch

    v = validate_device(value)
    cuda = torch.cuda.is_available()
    mps_backend = getattr(torch.backends, "mps", None)
    mps = bool(mps_backend is not None and mps_backend.is_available())
    if v == "auto":
        return "cuda" if cuda else ("mps" if mps else "cpu")
    if v.startswith("cuda"):
        if not cuda:
            raise ValueError(f"MOVIELENS_DEVICE={value}: CUDA is not available on this machine "
                             "(torch.cuda.is_available() is False); use auto or cpu")
        index = int(v.split(":")[1]) if ":" in v else 0
        if index >= torch.cuda.device_count():
            raise ValueError(f"MOVIELENS_DEVICE={value}: only {torch.cuda.device_count()} CUDA device(s)")
        return v
    if v == "mps" and not mps:
        raise ValueError(f"MOVIELENS_DEVICE={value}: MPS is not available on this machine; use auto or cpu")
    return v


class TorchDevice(dg.ConfigurableResource):
    """Which torch device to use; `resolve()` gives the concrete device string (`cuda`, `mps`, `cpu`)."""

    device: str = "auto"

    def resolve(self) -> str:
        try:
            return resolve_device(self.device)
        except ValueError as exc:
            raise dg.Failure(description=str(exc)) from None

    def describe(self) -> dict[str, str]:
        return {"requested": self.device, "resolved": self.resolve()}
