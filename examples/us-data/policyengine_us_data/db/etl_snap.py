"""Mirrors `policyengine_us_data.db.etl_snap`: SNAP benefit dollars and
participating households per state (stratum `snap > 0`). The real module reads
USDA FNS state tables.
    python -m policyengine_us_data.db.etl_snap --year 2024
"""

from policyengine_us_data.db._common import (
    PER_CAPITA,
    SNAP_HOUSEHOLDS_PER_CAPITA,
    noise,
    rng,
    simple_main,
)
from policyengine_us_data.db._state_targets import add_state_targets
from policyengine_us_data.utils.io import run_main


def body(conn, year):
    r = rng(year, "etl_snap")

    def rows(fips, pop):
        intensity = noise(r, 0.15)
        benefit = noise(r, 0.05)
        return [
            ("snap", pop * PER_CAPITA["snap"] * intensity * benefit, "USDA FNS"),
            ("household_count", round(pop * SNAP_HOUSEHOLDS_PER_CAPITA * intensity), "USDA FNS"),
        ]

    return add_state_targets(conn, year, [("snap", ">", 0)], rows, "SNAP recipients")


def main(argv=None):
    return simple_main("etl_snap", body)


if __name__ == "__main__":
    run_main(main)
