"""Mirrors `policyengine_us_data.db.etl_aca_marketplace`: ACA premium tax
credit dollars and subsidised tax units per state (stratum `aca_ptc > 0`;
CMS effectuated-enrollment reports in the real module).
    python -m policyengine_us_data.db.etl_aca_marketplace --year 2024
"""

from pathlib import Path

from policyengine_us_data.db._common import (
    ACA_UNITS_PER_CAPITA,
    PER_CAPITA,
    noise,
    rng,
    simple_main,
)
from policyengine_us_data.db._state_targets import add_state_targets
from policyengine_us_data.utils.io import run_main


def body(conn, year):
    r = rng(year, "etl_aca_marketplace")

    def rows(fips, pop):
        take = noise(r, 0.2)
        return [
            ("aca_ptc", pop * PER_CAPITA["aca_ptc"] * take * noise(r, 0.05), "CMS marketplace"),
            ("tax_unit_count", round(pop * ACA_UNITS_PER_CAPITA * take), "CMS marketplace"),
        ]

    return add_state_targets(conn, year, [("aca_ptc", ">", 0)], rows, "ACA PTC recipients")


def add_state_metal_csv(parser):
    # The real module's --state-metal-csv (a git-tracked CSV under
    # storage/calibration_targets/); the twin's ACA targets are synthetic, so
    # it is accepted only.
    parser.add_argument("--state-metal-csv", type=Path, default=None, help="state metal-level selection CSV")


def main(argv=None):
    return simple_main("etl_aca_marketplace", body, allow_year=False, extra_args_fn=add_state_metal_csv)


if __name__ == "__main__":
    run_main(main)
