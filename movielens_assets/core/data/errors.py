"""Errors raised for bad input data. Messages name the file, the field / line and what was expected."""

from __future__ import annotations


class DataValidationError(ValueError):
    """Input data does not have the expected format or content."""


class DatasetNotFoundError(FileNotFoundError):
    """A dataset (file, directory or named release) cannot be found or is unknown."""


class DownloadError(RuntimeError):
    """A download failed (network, HTTP status, truncated file or checksum mismatch)."""
