"""Mirrors `policyengine_us_data.db.etl_national_targets`: national aggregate
dollar targets (CBO / JCT / Treasury / BEA in the real module) attached to
the national stratum.
    python -m policyengine_us_data.db.etl_national_targets --year 2024
"""

from policyengine_us_data.db._common import (
    PER_CAPITA,
    PERSONS_PER_HOUSEHOLD,
    add_target,
    geo_strata,
    noise,
    rng,
    simple_main,
)
from policyengine_us_data.utils.geography import POPULATION_THOUSANDS
from policyengine_us_data.utils.io import run_main

SOURCES = {
    "employment_income": "CBO",
    "self_employment_income": "CBO",
    "social_security": "SSA Trustees",
    "taxable_interest_income": "IRS SOI",
    "dividend_income": "IRS SOI",
    "taxable_pension_income": "IRS SOI",
    "adjusted_gross_income": "IRS SOI",
    "rent": "BEA",
    "real_estate_taxes": "Census",
    "snap": "CBO",
    "tanf": "HHS ACF",
    "aca_ptc": "CBO",
    "tip_income": "JCT",
}


def body(conn, year):
    r = rng(year, "etl_national_targets")
    national_id, _, _ = geo_strata(conn)
    growth = (1.0 + 0.005) ** (year - 2023)
    us_pop = sum(POPULATION_THOUSANDS.values()) * 1000.0 * growth
    n = 0
    for variable in sorted(PER_CAPITA):
        value = us_pop * PER_CAPITA[variable] * noise(r, 0.03)
        add_target(conn, national_id, variable, year, round(value, 2), SOURCES[variable])
        n += 1
    households = round(us_pop / PERSONS_PER_HOUSEHOLD * noise(r, 0.01))
    add_target(conn, national_id, "household_count", year, households, "Census CPS")
    return n + 1


def main(argv=None):
    return simple_main("etl_national_targets", body, allow_year=False)


if __name__ == "__main__":
    run_main(main)
