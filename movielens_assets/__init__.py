"""movielens-rec: a MovieLens recommender platform as a Dagster asset graph.

`movielens_assets.core` is the plain-Python library (no Dagster); the rest wires it into assets.
"""
