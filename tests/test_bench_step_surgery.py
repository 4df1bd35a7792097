"""The what-if rewrites of benchmarks/bench_step_surgery.py on the shrunken ResNet step: each
finds every place it is meant for (counted by hand from the layout: a batch norm after the
stem conv, after each of the 3 blocks' 2 convs and on the 2 strided shortcuts; a ReLU after
the stem and 2 in each block), the exact rewrites keep the step's values and the upper-bound
ones change them. No timing is asserted."""
from __future__ import annotations

from benchmarks.bench_step_surgery import VARIANTS, measure

BATCH_NORMS, RELUS = 1 + 3 * 2 + 2, 1 + 3 * 2


def test_rewrites_find_their_places_and_keep_or_change_the_values():
    res = measure(list(VARIANTS), rounds=1, quick=True)
    assert {k: r["places"] for k, r in res.items()} == {
        "bn_dx_free": BATCH_NORMS, "relu_mask_free": RELUS,
        "bn_dx_by_batchnorm": BATCH_NORMS, "var_by_sumsquare": BATCH_NORMS}
    assert res["bn_dx_by_batchnorm"]["max_diff"] == 0.0  # the same float ops, bit for bit
    assert res["var_by_sumsquare"]["max_diff"] <= 1e-4
    assert res["bn_dx_free"]["max_diff"] > 1e-3 and res["relu_mask_free"]["max_diff"] > 1e-3
