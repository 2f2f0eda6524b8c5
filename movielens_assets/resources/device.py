"""The torch device every torch step runs on (`MOVIELENS_DEVICE`: auto | cpu | cuda | cuda:N | mps).

Parsing and resolution live in `core/device.py` (the one device parser); torch is imported only when
the device is resolved (the code location stays light).
"""


import dagster as dg

from movielens_assets.core.device import resolve_device
from movielens_assets.settings import default


class TorchDevice(dg.ConfigurableResource):
    """Which torch device to use; `resolve()` gives the concrete device string (`cuda`, `mps`, `cpu`)."""

    device: str = default("device")

    def resolve(self) -> str:
        try:
            return resolve_device(self.device)
        except ValueError as exc:
            raise dg.Failure(description=str(exc)) from None

    def describe(self) -> dict[str, str]:
        return {"requested": self.device, "resolved": self.resolve()}
