"""Evaluation shared by every recall channel and the ranker: splits, metrics, confidence intervals."""
