"""Mirrors `policyengine_us_data.datasets.cps.extended_cps`
(ExtendedCPS_2024): the CPS stacked with a PUF-imputed copy of itself. The
copy keeps each CPS household's people and benefits but takes its tax-return
incomes from the PUF household at the same weighted AGI quantile (the real
module uses quantile random forests), so the top tail comes from the PUF.
Both halves carry half the original weight; `is_puf_clone` marks the copy.

    python -m policyengine_us_data.datasets.cps.extended_cps

No flags. As the real module it builds ExtendedCPS_2024 from CPS_2024_Full
(STORAGE_FOLDER/cps_2024_full.h5), then ExtendedCPS_2024_Half from CPS_2024
(cps_2024.h5), both with PUF_2024 (puf_2024.h5): extended_cps_2024.h5 and
extended_cps_2024_half.h5.
"""

import time

from policyengine_us_data.utils.io import UsageError, run_main

# (output, CPS input) in the order the real __main__ builds them.
BUILDS = (("extended_cps_2024.h5", "cps_2024_full.h5"), ("extended_cps_2024_half.h5", "cps_2024.h5"))

IMPUTED = ("employment_income", "self_employment_income", "taxable_interest_income", "dividend_income")


def weighted_quantiles(values, weights):
    import numpy as np

    order = np.argsort(values, kind="stable")
    cw = np.cumsum(weights[order])
    q = np.empty(len(values))
    q[order] = (cw - 0.5 * weights[order]) / cw[-1]
    return q


def build(cps, puf):
    import numpy as np

    from policyengine_us_data.utils.simulation import (
        compute_agi,
        person_household_row,
        state_income_tax,
    )

    n = len(cps["household_id"])
    rows = person_household_row(cps["household_id"], cps["person_household_id"])
    prow = person_household_row(puf["household_id"], puf["person_household_id"])
    q_cps = weighted_quantiles(cps["adjusted_gross_income"], cps["household_weight"])
    q_puf = weighted_quantiles(puf["adjusted_gross_income"], puf["household_weight"])
    order = np.argsort(q_puf, kind="stable")
    donor = order[np.clip(np.searchsorted(q_puf[order], q_cps), 0, len(order) - 1)]

    clone = {k: a.copy() for k, a in cps.items()}
    first = np.r_[True, rows[1:] != rows[:-1]]  # household head = first person
    for var in IMPUTED:
        donor_total = np.bincount(prow, weights=puf[var], minlength=len(puf["household_id"]))[donor]
        cps_total = np.bincount(rows, weights=cps[var], minlength=n)
        share = np.where(cps_total[rows] > 0, cps[var] / np.where(cps_total[rows] > 0, cps_total[rows], 1), first.astype(float))
        clone[var] = np.round(donor_total[rows] * share, 2)
    clone["adjusted_gross_income"] = compute_agi(clone, rows)
    clone["state_income_tax"] = state_income_tax(clone["adjusted_gross_income"], clone["state_fips"])
    offset_h = int(cps["household_id"].max())
    offset_p = int(cps["person_id"].max())
    clone["household_id"] = cps["household_id"] + offset_h
    clone["person_household_id"] = cps["person_household_id"] + offset_h
    clone["person_id"] = cps["person_id"] + offset_p

    out = {}
    for k in cps:
        out[k] = np.concatenate([cps[k], clone[k]])
    out["household_weight"] = np.round(out["household_weight"] * 0.5, 4)
    out["is_puf_clone"] = np.r_[np.zeros(n, bool), np.ones(n, bool)]
    return out


def main(argv=None):
    from policyengine_us_data.storage import STORAGE_FOLDER
    from policyengine_us_data.utils.h5io import read_dataset, write_dataset
    from policyengine_us_data.utils.simulation import entities_for

    t0 = time.perf_counter()
    puf, _, _ = read_dataset(str(STORAGE_FOLDER / "puf_2024.h5"))
    if "employment_income" not in puf or "household_weight" not in puf:
        raise UsageError("puf_2024.h5 is not a PUF dataset")
    for output, source in BUILDS:
        cps, _, period = read_dataset(str(STORAGE_FOLDER / source))
        for need in ("snap", "congressional_district_geoid"):
            if need not in cps:
                raise UsageError("%s is not a CPS dataset (no %s)" % (source, need))
        v = build(cps, puf)
        write_dataset(str(STORAGE_FOLDER / output), v, entities_for(v), period)
        print("extended_cps: %d households, %d persons -> %s" % (len(v["household_id"]), len(v["person_id"]), output))
    print("extended_cps: %.2fs" % (time.perf_counter() - t0))
    return 0


if __name__ == "__main__":
    run_main(main)
