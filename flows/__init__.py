"""arm-etl's Prefect flows. Each is importable and callable as plain Python; ``python -m flows`` is the CLI."""
