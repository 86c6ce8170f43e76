"""Mirrors `policyengine_us_data.datasets.acs.acs` (ACS_2022): American
Community Survey household microdata used as the donor survey for
rent / property-tax imputation. The real module downloads Census ACS PUMS;
this one synthesises it (seeded) with state-specific housing costs.

    python -m policyengine_us_data.datasets.acs.acs

No flags (the real module has none): it writes STORAGE_FOLDER/acs_2022.h5.
Its size and seed are the twin's own knobs, EXAMPLE_HOUSEHOLDS (default 2000)
and EXAMPLE_SEED (default 0), read from the environment.
"""

import time

from policyengine_us_data.utils.io import example_households, example_seed, run_main

PERIOD = 2022


def generate(n, seed):
    import numpy as np

    from policyengine_us_data.utils.geography import POPULATION_THOUSANDS

    rng = np.random.default_rng([seed, PERIOD, 1])
    fips = np.array(sorted(POPULATION_THOUSANDS), dtype=np.int64)
    p = np.array([POPULATION_THOUSANDS[f] for f in fips], dtype=float)
    state = rng.choice(fips, size=n, p=p / p.sum())
    # deterministic per-state housing cost index
    cost_rng = np.random.default_rng([PERIOD, 99])
    cost_index = np.ones(100)
    cost_index[fips] = np.exp(cost_rng.normal(0.0, 0.22, len(fips)))
    size = rng.choice(np.arange(1, 7), size=n, p=[0.28, 0.36, 0.16, 0.12, 0.05, 0.03])
    n_persons = int(size.sum())
    hh = np.repeat(np.arange(n), size)
    pos = np.arange(n_persons) - np.repeat(np.cumsum(size) - size, size)
    adult = pos < np.minimum(size, 2)[hh]
    age = np.where(adult, rng.integers(18, 86, n_persons), rng.integers(0, 18, n_persons))
    employed = adult & (age < 65) & (rng.random(n_persons) < 0.75)
    emp = np.where(employed, rng.lognormal(np.log(43000), 0.9, n_persons), 0.0)
    hh_emp = np.bincount(hh, weights=emp, minlength=n)
    income_pct = np.argsort(np.argsort(hh_emp + rng.random(n))) / max(n - 1, 1)
    renter = rng.random(n) < 0.62 - 0.45 * income_pct
    ci = cost_index[state]
    rent = np.where(renter, 12 * ci * (850 + 1400 * income_pct) * rng.lognormal(0, 0.25, n), 0.0)
    ret = np.where(~renter, ci * (1800 + 5200 * income_pct) * rng.lognormal(0, 0.45, n), 0.0)
    return {
        "household_id": np.arange(1, n + 1, dtype=np.int64),
        "household_weight": np.round(131_000_000 / n * rng.uniform(0.7, 1.3, n), 2),
        "state_fips": state,
        "rent": np.round(rent, 2),
        "real_estate_taxes": np.round(ret, 2),
        "person_id": np.arange(1, n_persons + 1, dtype=np.int64),
        "person_household_id": (hh + 1).astype(np.int64),
        "age": age.astype(np.int64),
        "is_male": rng.random(n_persons) < 0.49,
        "employment_income": np.round(emp, 2),
    }


def main(argv=None):
    n, seed = example_households(), example_seed()
    t0 = time.perf_counter()
    v = generate(n, seed)

    from policyengine_us_data.storage import STORAGE_FOLDER
    from policyengine_us_data.utils.h5io import write_dataset
    from policyengine_us_data.utils.simulation import entities_for

    output = STORAGE_FOLDER / "acs_2022.h5"
    write_dataset(str(output), v, entities_for(v), PERIOD)
    print("acs: %d households -> %s (%.2fs)" % (n, output.name, time.perf_counter() - t0))
    return 0


if __name__ == "__main__":
    run_main(main)
