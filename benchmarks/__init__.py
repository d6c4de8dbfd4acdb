"""catalog-sync benchmarks: `python -m benchmarks --help`."""
