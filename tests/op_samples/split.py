"""Sample rows: split (several outputs)."""
from . import Sample, randn

SAMPLES = [
    Sample("split", [randn(5, 3)], {"axis": 0, "sizes": (2, 3)}, second_order=True),
    Sample("split", [randn(2, 6)], {"axis": -1, "sizes": (1, 2, 3)}, label="last-axis"),
]
