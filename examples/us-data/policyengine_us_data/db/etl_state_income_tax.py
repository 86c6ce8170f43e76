"""Mirrors `policyengine_us_data.db.etl_state_income_tax`: state individual
income tax collections (Census State Government Tax Collections in the real
module). States without a broad income tax get no target.
    python -m policyengine_us_data.db.etl_state_income_tax --year 2024
"""

from policyengine_us_data.db._common import PER_CAPITA, noise, rng, simple_main
from policyengine_us_data.db._state_targets import add_state_targets
from policyengine_us_data.utils.geography import STATE_INCOME_TAX_RATE
from policyengine_us_data.utils.io import run_main


def body(conn, year):
    r = rng(year, "etl_state_income_tax")

    def rows(fips, pop):
        rate = STATE_INCOME_TAX_RATE[fips]
        if rate <= 0:
            return []
        value = pop * PER_CAPITA["adjusted_gross_income"] * rate * noise(r, 0.06)
        return [("state_income_tax", value, "Census STC")]

    return add_state_targets(conn, year, [], rows, "State income tax")


def main(argv=None):
    return simple_main("etl_state_income_tax", body)


if __name__ == "__main__":
    run_main(main)
