"""Helper for the state-level ETL modules (the real ones each parse a
different administrative source; here each one is a per-capita rate times the
state's population from the etl_age targets, with seeded per-state noise)."""

from policyengine_us_data.db._common import add_stratum, add_target, geo_strata, state_population
from policyengine_us_data.utils.geography import STATE_CODES


def add_state_targets(conn, year, domain, rows, notes):
    """For every state: one stratum (state + ``domain`` constraints) and the
    targets ``rows(fips, population) -> [(variable, value, source)]``."""
    _, state_ids, _ = geo_strata(conn)
    pops = state_population(conn, year)
    n = 0
    for fips in sorted(state_ids):
        targets = rows(fips, pops[fips])
        if not targets:
            continue
        if domain:
            sid = add_stratum(
                conn,
                state_ids[fips],
                [("state_fips", "==", fips)] + list(domain),
                "%s, %s" % (notes, STATE_CODES[fips]),
            )
        else:
            sid = state_ids[fips]
        for variable, value, source in targets:
            add_target(conn, sid, variable, year, round(value, 2), source)
            n += 1
    return n
