"""Mirrors `policyengine_us_data.calibration.create_source_imputed_cps`:
re-imputes source-survey variables onto the stratified CPS with state as a
predictor. Rent and real-estate taxes come from ACS_2022 donors in the same
(state, income quintile, tenure) cell (seeded donor draw, national fallback);
`tip_income` (SIPP in the real module) and `net_worth` (SCF) are drawn from
simple seeded models.

    python -m policyengine_us_data.calibration.create_source_imputed_cps

No argv, as the real module (anything given is ignored). Reads
STORAGE_FOLDER/stratified_extended_cps_2024.h5 and acs_2022.h5; writes
source_imputed_stratified_extended_cps_2024.h5.
"""

import time

from policyengine_us_data.utils.io import UsageError, run_main

SEED = 0


def quintile(values):
    import numpy as np

    ranks = np.argsort(np.argsort(values, kind="stable"), kind="stable")
    return np.minimum(ranks * 5 // max(len(values), 1), 4)


def impute(v, acs, seed):
    import numpy as np

    from policyengine_us_data.utils.simulation import person_household_row

    rng = np.random.default_rng([seed, 6])
    rows = person_household_row(v["household_id"], v["person_household_id"])
    arows = person_household_row(acs["household_id"], acs["person_household_id"])
    n = len(v["household_id"])
    emp = np.bincount(rows, weights=v["employment_income"], minlength=n)
    aemp = np.bincount(arows, weights=acs["employment_income"], minlength=len(acs["household_id"]))
    q, aq = quintile(emp), quintile(aemp)
    renter = v["rent"] > 0
    arenter = acs["rent"] > 0
    # cell key: state * 10 + quintile * 2 + tenure
    key = v["state_fips"] * 10 + q * 2 + renter
    akey = acs["state_fips"] * 10 + aq * 2 + arenter
    fallback_key = q * 2 + renter
    afallback = aq * 2 + arenter
    a_order = np.argsort(akey, kind="stable")
    a_sorted = akey[a_order]
    f_order = np.argsort(afallback, kind="stable")
    f_sorted = afallback[f_order]
    u = rng.random(n)
    lo = np.searchsorted(a_sorted, key, "left")
    hi = np.searchsorted(a_sorted, key, "right")
    flo = np.searchsorted(f_sorted, fallback_key, "left")
    fhi = np.searchsorted(f_sorted, fallback_key, "right")
    have = hi > lo
    donor = np.where(
        have,
        a_order[np.minimum(lo + (u * (hi - lo)).astype(np.int64), len(a_order) - 1)],
        f_order[np.minimum(flo + (u * (fhi - flo)).astype(np.int64), len(f_order) - 1)],
    )
    no_donor = ~have & (fhi <= flo)
    out = dict(v)
    out["rent"] = np.where(no_donor, v["rent"], acs["rent"][donor])
    out["real_estate_taxes"] = np.where(no_donor, v["real_estate_taxes"], acs["real_estate_taxes"][donor])

    working = v["employment_income"] > 0
    tips = working & (rng.random(len(rows)) < 0.045)
    out["tip_income"] = np.round(np.where(tips, rng.lognormal(np.log(8500), 0.7, len(rows)), 0.0), 2)
    head_age = v["age"][np.r_[0, np.flatnonzero(rows[1:] != rows[:-1]) + 1]] if len(rows) else v["age"]
    base = 0.8 * np.maximum(v["adjusted_gross_income"], 0) * (head_age / 25.0) ** 1.5
    out["net_worth"] = np.round(base * rng.lognormal(0.0, 1.0, n) - rng.uniform(0, 20000, n), 2)
    return out, int(have.sum()), int(no_donor.sum())


def main(argv=None):
    from policyengine_us_data.storage import STORAGE_FOLDER
    from policyengine_us_data.utils.h5io import read_dataset, write_dataset
    from policyengine_us_data.utils.simulation import entities_for

    t0 = time.perf_counter()
    source = str(STORAGE_FOLDER / "stratified_extended_cps_2024.h5")
    v, _, period = read_dataset(source)
    acs, _, _ = read_dataset(str(STORAGE_FOLDER / "acs_2022.h5"))
    for need in ("rent", "state_fips", "employment_income"):
        if need not in v:
            raise UsageError("%s lacks %s" % (source, need))
        if need not in acs:
            raise UsageError("acs_2022.h5 is not an ACS dataset (no %s)" % need)
    out, matched, unmatched = impute(v, acs, SEED)
    write_dataset(str(STORAGE_FOLDER / "source_imputed_stratified_extended_cps_2024.h5"), out, entities_for(out), period)
    print(
        "create_source_imputed_cps: %d households (%d state-cell donors, %d kept) -> source_imputed_stratified_extended_cps_2024.h5 (%.2fs)"
        % (len(out["household_id"]), matched, unmatched, time.perf_counter() - t0)
    )
    return 0


if __name__ == "__main__":
    run_main(main)
