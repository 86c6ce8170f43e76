"""Mirrors `policyengine_us_data.datasets.cps.cps`: builds CPS_2024_Full,
then CPS_2024 (a half sample, as the real `frac = 0.5`). The real module
downloads the Census CPS ASEC and reads ACS_2022 (`acs_2022.h5`) for its
imputations; this one synthesises the survey with a seeded generator and
takes the state distribution of households from ACS_2022, each household in
a congressional district of its state (districts of a state equally likely).

    python -m policyengine_us_data.datasets.cps.cps

No flags. Reads STORAGE_FOLDER/acs_2022.h5; writes cps_2024_full.h5
(EXAMPLE_HOUSEHOLDS households, default 2000, seed EXAMPLE_SEED) and
cps_2024.h5 (half of them, weights scaled to the same total).

Output: time-period-array HDF5 (`/variable/2024`), household- and
person-level arrays; persons are grouped by household in household order.
"""

import time

from policyengine_us_data.utils.io import UsageError, example_households, example_seed, run_main

US_HOUSEHOLDS = 131_000_000
HOUSEHOLD_SIZE_P = (0.28, 0.36, 0.16, 0.12, 0.05, 0.03)  # sizes 1..6
ADULT_AGE_BANDS = ((18, 35, 0.30), (35, 50, 0.25), (50, 65, 0.245), (65, 86, 0.205))


def district_weights(acs):
    """{cd_geoid: weight}: each state's ACS household weight, shared equally by its districts."""
    import numpy as np

    from policyengine_us_data.utils.geography import district_geoids

    by_state = np.bincount(acs["state_fips"].astype(np.int64), weights=acs["household_weight"], minlength=100)
    out = {}
    for fips in np.flatnonzero(by_state):
        cds = district_geoids(int(fips))
        for cd in cds:
            out[cd] = float(by_state[fips]) / len(cds)
    if not out:
        raise UsageError("acs_2022.h5 has no households")
    return out


def half_sample(v, seed):
    """CPS_2024: a seeded half of the households (with their persons), weights scaled to the full total."""
    import numpy as np

    from policyengine_us_data.utils.simulation import entities_for, person_household_row

    n = len(v["household_id"])
    rng = np.random.default_rng([seed, 2024, 8])
    keep = np.zeros(n, bool)
    keep[np.sort(rng.choice(n, size=max(1, n // 2), replace=False))] = True
    pkeep = keep[person_household_row(v["household_id"], v["person_household_id"])]
    entities = entities_for(v)
    out = {name: (arr[keep] if entities[name] == "household" else arr[pkeep]) for name, arr in v.items()}
    out["household_weight"] = np.round(out["household_weight"] * (v["household_weight"].sum() / out["household_weight"].sum()), 2)
    return out


def generate(n_households, seed, district_pops, period=2024):
    """Return ``{variable: array}`` for a synthetic CPS."""
    import numpy as np

    from policyengine_us_data.utils.geography import MEDICAID_EXPANSION
    from policyengine_us_data.utils.simulation import compute_agi, state_income_tax

    rng = np.random.default_rng([seed, period, 2])
    cds = np.array(sorted(district_pops), dtype=np.int64)
    p = np.array([district_pops[c] for c in cds], dtype=np.float64)
    p /= p.sum()
    n = n_households

    # --- households -----------------------------------------------------------
    hh_cd = rng.choice(cds, size=n, p=p)
    hh_state = hh_cd // 100
    size = rng.choice(np.arange(1, 7), size=n, p=np.array(HOUSEHOLD_SIZE_P))
    two_adults = (size >= 2) & (rng.random(n) < 0.8)
    n_adults = np.where(two_adults, 2, 1)
    # a few multi-adult households without children (adult child / roommate)
    extra_adult = (size - n_adults > 0) & (rng.random(n) < 0.6)
    n_adults = n_adults + extra_adult
    n_persons = size
    n_total = int(n_persons.sum())

    hh_index = np.repeat(np.arange(n), n_persons)
    pos = np.arange(n_total) - np.repeat(np.cumsum(n_persons) - n_persons, n_persons)
    is_adult = pos < np.repeat(n_adults, n_persons)
    is_head = pos == 0

    # --- ages -----------------------------------------------------------------
    bands = np.array([(lo, hi) for lo, hi, _ in ADULT_AGE_BANDS])
    bp = np.array([w for *_, w in ADULT_AGE_BANDS])
    head_band = rng.choice(len(bands), size=n, p=bp / bp.sum())
    head_age = rng.integers(bands[head_band, 0], bands[head_band, 1])
    age = np.empty(n_total, dtype=np.int64)
    age[is_head] = head_age
    others_adult = is_adult & ~is_head
    spouse_age = head_age[hh_index[others_adult]] + np.round(rng.normal(0, 4, others_adult.sum())).astype(np.int64)
    age[others_adult] = np.clip(spouse_age, 18, 85)
    kids = ~is_adult
    parent_age = head_age[hh_index[kids]]
    kid_max = np.clip(parent_age - 17, 1, 18)
    age[kids] = np.floor(rng.random(kids.sum()) * kid_max).astype(np.int64)
    coin = rng.random(n_total)
    head_male = (coin < 0.5)[is_head]
    is_male = coin < np.where(kids, 0.51, 0.5)
    spouse = others_adult & (pos == 1)
    is_male[spouse] = ~head_male[hh_index[spouse]]

    # --- incomes ----------------------------------------------------------------
    working_age = is_adult & (age < 65)
    employed = np.where(working_age, rng.random(n_total) < 0.76, is_adult & (rng.random(n_total) < 0.18))
    employment_income = np.where(employed, rng.lognormal(np.log(46000), 0.9, n_total), 0.0)
    self_emp = is_adult & (rng.random(n_total) < 0.085)
    self_employment_income = np.where(self_emp, rng.lognormal(np.log(22000), 1.1, n_total), 0.0)
    ss = (age >= 62) & (rng.random(n_total) < 0.88)
    social_security = np.where(ss, np.clip(rng.normal(21500, 6500, n_total), 3000, 48000), 0.0)
    has_int = is_adult & (rng.random(n_total) < 0.38)
    taxable_interest_income = np.where(has_int, rng.lognormal(np.log(700), 1.6, n_total), 0.0)
    has_div = is_adult & (rng.random(n_total) < 0.17)
    dividend_income = np.where(has_div, rng.lognormal(np.log(2500), 1.7, n_total), 0.0)
    has_pen = (age >= 58) & (rng.random(n_total) < 0.32)
    taxable_pension_income = np.where(has_pen, rng.lognormal(np.log(16000), 0.8, n_total), 0.0)

    def r2(x):
        return np.round(x, 2)

    v = {
        "household_id": np.arange(1, n + 1, dtype=np.int64),
        "person_household_id": (hh_index + 1).astype(np.int64),
        "person_id": np.arange(1, n_total + 1, dtype=np.int64),
        "age": age,
        "is_male": is_male.astype(bool),
        "employment_income": r2(employment_income),
        "self_employment_income": r2(self_employment_income),
        "social_security": r2(social_security),
        "taxable_interest_income": r2(taxable_interest_income),
        "dividend_income": r2(dividend_income),
        "taxable_pension_income": r2(taxable_pension_income),
    }
    agi = compute_agi(v, hh_index)
    poverty_line = 15650.0 + 5500.0 * (size - 1)
    ratio = (agi + 0.5 * np.bincount(hh_index, weights=social_security, minlength=n)) / poverty_line
    exp_lookup = np.zeros(100, dtype=bool)
    for fips, flag in MEDICAID_EXPANSION.items():
        exp_lookup[fips] = flag
    expansion = exp_lookup[hh_state]
    children = np.bincount(hh_index, weights=kids.astype(float), minlength=n)

    # --- benefits ---------------------------------------------------------------
    snap_elig = ratio < 1.3
    snap_take = snap_elig & (rng.random(n) < 0.78)
    snap = np.where(snap_take, (1900 + 1450 * size) * rng.uniform(0.55, 1.45, n), 0.0)
    tanf_take = (ratio < 0.6) & (children > 0) & (rng.random(n) < 0.10)
    tanf = np.where(tanf_take, rng.uniform(2400, 9000, n), 0.0)

    p_ratio = ratio[hh_index]
    adult_limit = np.where(expansion[hh_index], 1.38, 0.5)
    medicaid_elig = np.where(kids, p_ratio < 2.1, np.where(age >= 65, p_ratio < 1.0, p_ratio < adult_limit))
    medicaid_enrolled = medicaid_elig & (rng.random(n_total) < 0.82)
    medicaid_enrolled |= ~medicaid_elig & (rng.random(n_total) < 0.035)
    female_fertile = ~is_male & (age >= 18) & (age < 45)
    is_pregnant = female_fertile & (rng.random(n_total) < 0.065)

    aca_person = is_adult & (age < 65) & ~medicaid_enrolled & (p_ratio >= 1.0) & (p_ratio < 4.5) & (rng.random(n_total) < 0.16)
    aca_ptc = np.bincount(hh_index, weights=np.where(aca_person, rng.uniform(2500, 9500, n_total), 0.0), minlength=n)

    renter = rng.random(n) < np.where(ratio < 2.0, 0.6, 0.28)
    rent = np.where(renter, 12 * rng.uniform(750, 2300, n), 0.0)
    owner_tax = ~renter & (rng.random(n) < 0.9)
    real_estate_taxes = np.where(owner_tax, rng.lognormal(np.log(3300), 0.75, n), 0.0)

    weight = US_HOUSEHOLDS / n * rng.uniform(0.6, 1.4, n)

    v.update(
        {
            "household_weight": r2(weight),
            "state_fips": hh_state.astype(np.int64),
            "congressional_district_geoid": hh_cd.astype(np.int64),
            "snap": r2(snap),
            "tanf": r2(tanf),
            "rent": r2(rent),
            "aca_ptc": r2(aca_ptc),
            "real_estate_taxes": r2(real_estate_taxes),
            "adjusted_gross_income": agi,
            "state_income_tax": state_income_tax(agi, hh_state),
            "medicaid_enrolled": medicaid_enrolled.astype(bool),
            "is_pregnant": is_pregnant.astype(bool),
        }
    )
    return v


def main(argv=None):
    from policyengine_us_data.storage import STORAGE_FOLDER
    from policyengine_us_data.utils.h5io import read_dataset, write_dataset
    from policyengine_us_data.utils.simulation import entities_for

    n, seed = example_households(), example_seed()
    t0 = time.perf_counter()
    acs, _, _ = read_dataset(str(STORAGE_FOLDER / "acs_2022.h5"), ["state_fips", "household_weight"])
    full = generate(n, seed, district_weights(acs), 2024)
    for name, v in (("cps_2024_full.h5", full), ("cps_2024.h5", half_sample(full, seed))):
        write_dataset(str(STORAGE_FOLDER / name), v, entities_for(v), 2024)
        print("cps: %d households, %d persons -> %s" % (len(v["household_id"]), len(v["person_id"]), name))
    print("cps: %.2fs" % (time.perf_counter() - t0))
    return 0


if __name__ == "__main__":
    run_main(main)
