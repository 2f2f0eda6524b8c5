"""The algorithms and data code. Nothing under `core/` imports dagster."""
