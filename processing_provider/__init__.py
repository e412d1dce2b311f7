"""Processing provider and algorithms (one per module, on the base class in base.py)."""
