"""Torch building blocks shared by the project's models (padding / masking conventions: `masking.py`)."""
