"""Mirrors `policyengine_us_data.db.etl_aca_agi_state_targets`: total AGI of
ACA premium-tax-credit recipients per state (stratum `aca_ptc > 0`; IRS SOI
Form 8962 tables in the real module).
    python -m policyengine_us_data.db.etl_aca_agi_state_targets --year 2024
"""

from policyengine_us_data.db._common import ACA_AGI_PER_CAPITA, noise, rng, simple_main
from policyengine_us_data.db._state_targets import add_state_targets
from policyengine_us_data.utils.io import run_main


def body(conn, year):
    r = rng(year, "etl_aca_agi_state_targets")

    def rows(fips, pop):
        return [("adjusted_gross_income", pop * ACA_AGI_PER_CAPITA * noise(r, 0.2), "IRS SOI 8962")]

    return add_state_targets(conn, year, [("aca_ptc", ">", 0)], rows, "ACA PTC recipients")


def main(argv=None):
    return simple_main("etl_aca_agi_state_targets", body)


if __name__ == "__main__":
    run_main(main)
