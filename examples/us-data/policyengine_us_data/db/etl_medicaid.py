"""Mirrors `policyengine_us_data.db.etl_medicaid`: Medicaid enrollment per
state (`person_count` where `medicaid_enrolled == True`). The real module
reads CMS enrollment reports; expansion states get a higher enrollment rate.
    python -m policyengine_us_data.db.etl_medicaid --year 2024
"""

from policyengine_us_data.db._common import MEDICAID_RATE, noise, rng, simple_main
from policyengine_us_data.db._state_targets import add_state_targets
from policyengine_us_data.utils.geography import MEDICAID_EXPANSION
from policyengine_us_data.utils.io import run_main


def body(conn, year):
    r = rng(year, "etl_medicaid")

    def rows(fips, pop):
        rate = MEDICAID_RATE[MEDICAID_EXPANSION[fips]] * noise(r, 0.08)
        return [("person_count", round(pop * rate), "CMS Medicaid enrollment")]

    return add_state_targets(conn, year, [("medicaid_enrolled", "==", "True")], rows, "Medicaid enrolled")


def main(argv=None):
    return simple_main("etl_medicaid", body)


if __name__ == "__main__":
    run_main(main)
