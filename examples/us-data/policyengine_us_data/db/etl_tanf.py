"""Mirrors `policyengine_us_data.db.etl_tanf`: TANF cash assistance dollars
per state (stratum `tanf > 0`). The real module reads ACF caseload tables.
    python -m policyengine_us_data.db.etl_tanf --year 2024
"""

from policyengine_us_data.db._common import PER_CAPITA, noise, rng, simple_main
from policyengine_us_data.db._state_targets import add_state_targets
from policyengine_us_data.utils.io import run_main


def body(conn, year):
    r = rng(year, "etl_tanf")

    def rows(fips, pop):
        return [("tanf", pop * PER_CAPITA["tanf"] * noise(r, 0.25), "HHS ACF TANF")]

    return add_state_targets(conn, year, [("tanf", ">", 0)], rows, "TANF recipients")


def main(argv=None):
    return simple_main("etl_tanf", body, allow_year=False)


if __name__ == "__main__":
    run_main(main)
