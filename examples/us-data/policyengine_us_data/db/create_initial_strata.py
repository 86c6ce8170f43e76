"""Mirrors `policyengine_us_data.db.create_initial_strata`: the geographic
hierarchy. One national stratum (no constraints), 51 state strata
(`state_fips == F`) and 436 congressional-district strata
(`congressional_district_geoid == G`, parent = its state). The real module
reads Census UCGID tables; this one uses the static 2020 apportionment in
`utils/geography.py`.
    python -m policyengine_us_data.db.create_initial_strata --year 2024
"""

from policyengine_us_data.db._common import add_stratum, simple_main
from policyengine_us_data.utils.geography import (
    STATES,
    district_geoids,
    get_district_friendly_name,
)
from policyengine_us_data.utils.io import run_main, UsageError


def body(conn, year):
    if conn.execute("SELECT count(*) FROM strata").fetchone()[0]:
        raise UsageError("strata already exist; rebuild from create_database_tables")
    national = add_stratum(conn, None, [], "Geographic: United States")
    n = 1
    state_ids = {}
    for usps, fips, name, *_ in STATES:
        state_ids[fips] = add_stratum(
            conn, national, [("state_fips", "==", fips)], "Geographic: %s (%s)" % (name, usps)
        )
        n += 1
    for usps, fips, *_ in STATES:
        for geoid in district_geoids(fips):
            add_stratum(
                conn,
                state_ids[fips],
                [("congressional_district_geoid", "==", geoid)],
                "Geographic: congressional district %s" % get_district_friendly_name(geoid),
            )
            n += 1
    return n


def main(argv=None):
    return simple_main("create_initial_strata", body)


if __name__ == "__main__":
    run_main(main)
