"""Ranking: point-in-time features, sharded samples and the UnifiedRanker (docs/RANKING.md)."""
