"""The `chainsignals` command line: the console script, its commands, fast pre-checks and progress."""
