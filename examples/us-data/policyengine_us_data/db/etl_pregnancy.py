"""Mirrors `policyengine_us_data.db.etl_pregnancy`: pregnant people per state
(`person_count` where `is_pregnant == True`; CDC natality in the real module).
    python -m policyengine_us_data.db.etl_pregnancy --year 2024
"""

from policyengine_us_data.db._common import PREGNANT_PER_CAPITA, noise, rng, simple_main
from policyengine_us_data.db._state_targets import add_state_targets
from policyengine_us_data.utils.io import run_main


def body(conn, year):
    r = rng(year, "etl_pregnancy")

    def rows(fips, pop):
        return [("person_count", round(pop * PREGNANT_PER_CAPITA * noise(r, 0.1)), "CDC WONDER natality")]

    return add_state_targets(conn, year, [("is_pregnant", "==", "True")], rows, "Pregnant")


def main(argv=None):
    return simple_main("etl_pregnancy", body)


if __name__ == "__main__":
    run_main(main)
