"""Mirrors `policyengine_us_data.datasets.puf.puf` (PUF_2015, PUF_2021,
PUF_2023, PUF_2024): turns the 2015 IRS PUF into policyengine-style
microdata for each year. Incomes are uprated with the uprating factors
(written here, as the real puf.py calls
`create_policyengine_uprating_factors_table()`), returns become households of
head / spouse / dependents, and pension income is imputed from CPS_2024 (the
reason the real build runs cps.py before puf.py) by within-age-band quantile
matching.

    python -m policyengine_us_data.datasets.puf.puf

No flags. Reads STORAGE_FOLDER/irs_puf_2015.h5 and cps_2024.h5; writes
puf_2015.h5, puf_2021.h5, puf_2023.h5, puf_2024.h5, uprating_factors.csv and
uprating_growth_factors.csv.
"""

import time

from policyengine_us_data.utils.io import UsageError, run_main

YEARS = (2015, 2021, 2023, 2024)
SOURCE_YEAR = 2015
# PUF column -> (policyengine variable, uprating row)
INCOME_MAP = (
    ("E00200", "employment_income", "employment_income"),
    ("E00300", "taxable_interest_income", "taxable_interest_income"),
    ("E00600", "dividend_income", "dividend_income"),
    ("E00900", "self_employment_income", "self_employment_income"),
    ("E02400", "social_security", "social_security"),
)
AGERANGE_BOUNDS = {1: (18, 26), 2: (26, 35), 3: (35, 45), 4: (45, 55), 5: (55, 65), 6: (65, 75), 7: (75, 86)}
PENSION_AGE_BANDS = ((18, 45), (45, 55), (55, 65), (65, 75), (75, 200))


def quantile_impute(recipient_key, recipient_band, donor_values, donor_band, n_bands):
    """Give each recipient the donor value at its within-band rank quantile."""
    import numpy as np

    out = np.zeros(len(recipient_key))
    for b in range(n_bands):
        r_idx = np.flatnonzero(recipient_band == b)
        donors = np.sort(donor_values[donor_band == b])
        if len(r_idx) == 0 or len(donors) == 0:
            continue
        order = r_idx[np.argsort(recipient_key[r_idx], kind="stable")]
        q = (np.arange(len(order)) + 0.5) / len(order)
        out[order] = donors[np.minimum((q * len(donors)).astype(int), len(donors) - 1)]
    return out


def build(puf, cps, factors, year):
    import numpy as np

    from policyengine_us_data.utils.simulation import compute_agi

    rng = np.random.default_rng([year, 4])
    n = len(puf["RECID"])

    def growth(row):
        if row not in factors or year not in factors[row] or SOURCE_YEAR not in factors[row]:
            raise UsageError("uprating factors lack %s %d/%d" % (row, SOURCE_YEAR, year))
        return factors[row][year] / factors[row][SOURCE_YEAR]

    joint = puf["MARS"] == 2
    deps = np.maximum(puf["XTOT"] - 1 - joint, 0)
    size = 1 + joint + deps
    n_persons = int(size.sum())
    hh = np.repeat(np.arange(n), size)
    pos = np.arange(n_persons) - np.repeat(np.cumsum(size) - size, size)
    head = pos == 0
    spouse = (pos == 1) & joint[hh]
    dependent = ~head & ~spouse

    lo = np.array([AGERANGE_BOUNDS[int(a)][0] for a in puf["AGERANGE"]])
    hi = np.array([AGERANGE_BOUNDS[int(a)][1] for a in puf["AGERANGE"]])
    head_age = rng.integers(lo, hi)
    age = np.empty(n_persons, dtype=np.int64)
    age[head] = head_age
    age[spouse] = np.clip(head_age[hh[spouse]] + np.round(rng.normal(0, 4, spouse.sum())).astype(np.int64), 18, 85)
    age[dependent] = rng.integers(0, 18, dependent.sum())
    head_male = rng.random(n) < 0.55
    is_male = np.where(head, head_male[hh], np.where(spouse, ~head_male[hh], rng.random(n_persons) < 0.51))

    v = {
        "household_id": np.arange(1, n + 1, dtype=np.int64),
        "household_weight": np.round(puf["S006"] / 100.0 * growth("household_weight"), 2),
        "person_id": np.arange(1, n_persons + 1, dtype=np.int64),
        "person_household_id": (hh + 1).astype(np.int64),
        "age": age,
        "is_male": is_male.astype(bool),
    }
    share = np.where(head, np.where(joint[hh], 0.6, 1.0), np.where(spouse, 0.4, 0.0))
    for col, var, row in INCOME_MAP:
        amount = puf[col].astype(float) * growth(row)
        person_share = share if var == "employment_income" else head.astype(float)
        v[var] = np.round(amount[hh] * person_share, 2)

    # Pension imputation from CPS (quantile match within age band, by AGI).
    def band_of(a):
        out = np.zeros(len(a), dtype=np.int64)
        for b, (blo, bhi) in enumerate(PENSION_AGE_BANDS):
            out[(a >= blo) & (a < bhi)] = b
        return out

    cps_adult = cps["age"] >= 18
    donor_band = band_of(cps["age"][cps_adult])
    donor_values = cps["taxable_pension_income"][cps_adult]
    imputed = quantile_impute(
        puf["E00100"].astype(float), band_of(head_age), donor_values, donor_band, len(PENSION_AGE_BANDS)
    )
    v["taxable_pension_income"] = np.round(np.where(head, imputed[hh], 0.0), 2)
    v["adjusted_gross_income"] = compute_agi(v, hh)
    return v


def main(argv=None):
    from policyengine_us_data.storage import STORAGE_FOLDER
    from policyengine_us_data.utils.h5io import read_dataset, write_dataset
    from policyengine_us_data.utils.simulation import entities_for
    from policyengine_us_data.utils.uprating import create_policyengine_uprating_factors_table

    t0 = time.perf_counter()
    factors = create_policyengine_uprating_factors_table()
    irs_puf = str(STORAGE_FOLDER / "irs_puf_2015.h5")
    puf, _, period = read_dataset(irs_puf)
    if period != str(SOURCE_YEAR) or "E00200" not in puf:
        raise UsageError("%s is not an IRS PUF 2015 file" % irs_puf)
    cps, _, _ = read_dataset(str(STORAGE_FOLDER / "cps_2024.h5"), ["age", "taxable_pension_income"])
    for year in YEARS:
        v = build(puf, cps, factors, year)
        write_dataset(str(STORAGE_FOLDER / ("puf_%d.h5" % year)), v, entities_for(v), year)
        print("puf: %d households, %d persons -> puf_%d.h5" % (len(v["household_id"]), len(v["person_id"]), year))
    print("puf: %.2fs" % (time.perf_counter() - t0))
    return 0


if __name__ == "__main__":
    run_main(main)
