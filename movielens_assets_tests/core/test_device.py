"""The one device parser (`core/device.py`): the documented forms of MOVIELENS_DEVICE."""

from __future__ import annotations

import pytest

from movielens_assets.core.device import parse_device, resolve_device


@pytest.mark.parametrize(("text", "parsed"), [
    ("auto", "auto"), ("cpu", "cpu"), ("cuda", "cuda"), ("cuda:0", "cuda:0"), ("cuda:12", "cuda:12"), ("mps", "mps"),
    (" CPU ", "cpu"), ("CUDA:1", "cuda:1"), ("", "auto"), (None, "auto"), ("  ", "auto"),
])
def test_parse_device_accepts_the_documented_forms(text, parsed):
    assert parse_device(text) == parsed


@pytest.mark.parametrize("text", ["tpu", "gpu", "cuda:", "cuda:x", "cuda:-1", "cuda1", "cpu:0", "mps:0"])
def test_parse_device_rejects_anything_else_naming_the_setting_and_the_forms(text):
    with pytest.raises(ValueError, match=r"MOVIELENS_DEVICE must be one of auto, cpu, cuda, cuda:N, mps; got"):
        parse_device(text)
    with pytest.raises(ValueError, match=r"^--device must be one of"):
        parse_device(text, name="--device")


def test_resolve_device_on_this_machine():
    import torch

    assert resolve_device("cpu") == "cpu" and resolve_device(" CPU ") == "cpu"
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "mps" if mps else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="MOVIELENS_DEVICE=cuda:1: CUDA is not available"):
            resolve_device("cuda:1")
    else:
        with pytest.raises(ValueError, match="CUDA device"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")
