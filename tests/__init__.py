"""chainsignals' tests: a package, so shared modules (builders, helpers, spec_note) import as `tests.<name>`."""
