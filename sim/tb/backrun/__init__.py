"""Test cases and benches for the backrun unit (``hw/backrun.py``)."""
