"""The pipeline's stages as plain functions over all symbols and dates (no Prefect): ingest, silver, gold, backtest."""
