"""The deterministic synthetic market: the embedded demo source and the benchmark's full-market day."""
