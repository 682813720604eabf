"""`make bench`: the SPEC section 8 benchmark (see bench/bench.py)."""
