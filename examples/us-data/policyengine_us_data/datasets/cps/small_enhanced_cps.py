"""Mirrors `policyengine_us_data.datasets.cps.small_enhanced_cps`:
`create_small_ecps` (a seeded sample of 1,000 households of the enhanced
CPS) and `create_sparse_ecps` (the households the reweighting kept: weight
above a hundredth of the mean; the real one keeps the nonzero weights of an
L0 fit and refuses a file under 1 MB, which the twin's small data would be).

    python -m policyengine_us_data.datasets.cps.small_enhanced_cps

No flags. Reads STORAGE_FOLDER/enhanced_cps_2024.h5; writes
small_enhanced_cps_2024.h5 and sparse_enhanced_cps_2024.h5.
"""

import time

from policyengine_us_data.utils.io import UsageError, run_main

SMALL_HOUSEHOLDS = 1_000


def subset(v, entities, keep):
    from policyengine_us_data.utils.simulation import person_household_row

    pkeep = keep[person_household_row(v["household_id"], v["person_household_id"])]
    return {name: (arr[keep] if entities[name] == "household" else arr[pkeep]) for name, arr in v.items()}


def main(argv=None):
    import numpy as np

    from policyengine_us_data.storage import STORAGE_FOLDER
    from policyengine_us_data.utils.h5io import read_dataset, write_dataset

    t0 = time.perf_counter()
    v, entities, period = read_dataset(str(STORAGE_FOLDER / "enhanced_cps_2024.h5"))
    weights = v["household_weight"]
    n = len(weights)
    if not np.any(weights > 0):
        raise UsageError("create_small_ecps: all household weights are zero")
    small = np.zeros(n, bool)
    small[np.random.default_rng(1456).choice(n, size=min(n, SMALL_HOUSEHOLDS), replace=False)] = True
    sparse = weights > 0.01 * weights.mean()
    for name, keep in (("small_enhanced_cps_2024.h5", small), ("sparse_enhanced_cps_2024.h5", sparse)):
        out = subset(v, entities, keep)
        write_dataset(str(STORAGE_FOLDER / name), out, entities, period)
        print("small_enhanced_cps: %d households -> %s" % (int(keep.sum()), name))
    print("small_enhanced_cps: %.2fs" % (time.perf_counter() - t0))
    return 0


if __name__ == "__main__":
    run_main(main)
