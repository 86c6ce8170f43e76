"""Mirrors `policyengine_us_data.datasets.puf.irs_puf` (IRS_PUF_2015): the
IRS SOI Public Use File with its demographics supplement, one row per tax
return, with the original upper-case PUF column names (S006 weight in
hundredths, MARS, XTOT, E00200 wages, ...). The real module reads the
private `puf_2015.csv` / `demographics_2015.csv` from Hugging Face; this one
synthesises them (seeded), including the heavy top tail the PUF is used for.

    python -m policyengine_us_data.datasets.puf.irs_puf --households N --seed S --output irs_puf_2015.h5
"""

import argparse
import time

from policyengine_us_data.utils.io import UsageError, run_main

PERIOD = 2015
COLUMNS = (
    "RECID", "S006", "MARS", "XTOT", "AGERANGE", "E00200", "E00300", "E00600",
    "P23250", "E00900", "E01500", "E02400", "E00100",
)


def generate(n, seed):
    import numpy as np

    rng = np.random.default_rng([seed, PERIOD, 3])
    mars = rng.choice([1, 2, 4], size=n, p=[0.48, 0.38, 0.14])
    deps = np.where(mars == 1, rng.binomial(1, 0.08, n), rng.binomial(3, 0.3, n))
    xtot = 1 + (mars == 2) + deps
    agerange = rng.choice(np.arange(1, 8), size=n, p=[0.12, 0.17, 0.17, 0.18, 0.16, 0.12, 0.08])
    top = rng.random(n) < 0.015  # oversampled high-income returns
    earners = 1 + ((mars == 2) & (rng.random(n) < 0.7))
    wages = np.where(rng.random(n) < 0.82, rng.lognormal(np.log(36000), 0.95, n) * earners, 0.0)
    wages = np.where(top, wages * rng.lognormal(2.2, 0.8, n), wages)
    interest = np.where(rng.random(n) < 0.4, rng.lognormal(np.log(500), 1.7, n), 0.0)
    dividends = np.where(rng.random(n) < 0.2, rng.lognormal(np.log(2000), 1.8, n), 0.0)
    dividends = np.where(top, dividends * 15, dividends)
    ltcg = np.where(rng.random(n) < 0.12, rng.lognormal(np.log(4000), 2.0, n), 0.0)
    business = np.where(rng.random(n) < 0.14, rng.lognormal(np.log(15000), 1.2, n), 0.0)
    business = np.where(top, business * 6, business)
    pension = np.where(agerange >= 5, np.where(rng.random(n) < 0.45, rng.lognormal(np.log(17000), 0.8, n), 0.0), 0.0)
    ss = np.where(agerange >= 6, rng.normal(17000, 5000, n).clip(2000), 0.0)
    agi = wages + interest + dividends + ltcg + business + pension + 0.5 * ss
    weight = np.where(top, 0.15, 1.0) * rng.uniform(0.8, 1.2, n)
    weight = weight / weight.sum() * 150_000_000
    cols = {
        "RECID": np.arange(1, n + 1, dtype=np.int64),
        "S006": np.round(weight * 100).astype(np.int64),
        "MARS": mars.astype(np.int64),
        "XTOT": xtot.astype(np.int64),
        "AGERANGE": agerange.astype(np.int64),
        "E00200": np.round(wages),
        "E00300": np.round(interest),
        "E00600": np.round(dividends),
        "P23250": np.round(ltcg),
        "E00900": np.round(business),
        "E01500": np.round(pension),
        "E02400": np.round(ss),
        "E00100": np.round(agi),
    }
    return cols


def main(argv=None):
    parser = argparse.ArgumentParser(description="Build the example IRS_PUF_2015 dataset")
    parser.add_argument("--households", type=int, default=2000, help="number of tax records")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    if args.households < 1:
        raise UsageError("--households must be >= 1")
    if args.seed < 0:
        raise UsageError("--seed must be >= 0")
    t0 = time.perf_counter()
    cols = generate(args.households, args.seed)

    from policyengine_us_data.utils.h5io import write_dataset

    write_dataset(args.output, cols, {c: "tax_unit" for c in cols}, PERIOD)
    print("irs_puf: %d records -> %s (%.2fs)" % (args.households, args.output, time.perf_counter() - t0))
    return 0


if __name__ == "__main__":
    run_main(main)
