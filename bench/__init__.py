"""The inventory benchmark: `python bench/inventory_bench.py` (see that module's docstring)."""
