"""MovieLens formats, downloads, the synthetic generator and DuckDB/Parquet helpers."""
