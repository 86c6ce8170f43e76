"""Mirrors `policyengine_us_data.db.etl_age`: population by age band
(`person_count` with `age` constraints) for every congressional district,
aggregated to states and the nation, plus district `household_count`.
The real module reads Census ACS S0101 tables; here district populations are
the 2023 state populations split across districts with seeded noise.
    python -m policyengine_us_data.db.etl_age --year 2024
"""

from policyengine_us_data.db._common import (
    AGE_BANDS,
    AGE_SHARES,
    PERSONS_PER_HOUSEHOLD,
    add_stratum,
    add_target,
    geo_strata,
    noise,
    rng,
    simple_main,
)
from policyengine_us_data.utils.geography import (
    POPULATION_THOUSANDS,
    STATES,
    get_district_friendly_name,
)
from policyengine_us_data.utils.io import run_main

SOURCE = "Census ACS S0101"


def age_constraints(lo, hi):
    c = [("age", ">=", lo)]
    if hi < 200:
        c.append(("age", "<", hi))
    return c


def band_label(lo, hi):
    return "%d+" % lo if hi >= 200 else "%d-%d" % (lo, hi - 1)


def body(conn, year):
    r = rng(year, "etl_age")
    national_id, state_ids, district_ids = geo_strata(conn)
    growth = (1.0 + 0.005) ** (year - 2023)
    n = 0
    state_totals = {}
    for usps, fips, *_ in STATES:
        cds = sorted(cd for cd in district_ids if cd // 100 == fips)
        shares = [noise(r, 0.04) for _ in cds]
        total = sum(shares)
        state_pop = POPULATION_THOUSANDS[fips] * 1000.0 * growth
        bands_total = [0] * len(AGE_BANDS)
        for cd, share in zip(cds, shares):
            pop = state_pop * share / total
            w = [s * noise(r, 0.05) for s in AGE_SHARES]
            ws = sum(w)
            name = get_district_friendly_name(cd)
            for i, (lo, hi) in enumerate(AGE_BANDS):
                value = round(pop * w[i] / ws)
                bands_total[i] += value
                sid = add_stratum(
                    conn,
                    district_ids[cd],
                    [("congressional_district_geoid", "==", cd)] + age_constraints(lo, hi),
                    "Age %s, %s" % (band_label(lo, hi), name),
                )
                add_target(conn, sid, "person_count", year, value, SOURCE)
                n += 1
            households = round(pop / (PERSONS_PER_HOUSEHOLD * noise(r, 0.03)))
            add_target(conn, district_ids[cd], "household_count", year, households, SOURCE)
            n += 1
        state_totals[fips] = bands_total
    national = [0] * len(AGE_BANDS)
    for usps, fips, *_ in STATES:
        for i, (lo, hi) in enumerate(AGE_BANDS):
            value = state_totals[fips][i]
            national[i] += value
            sid = add_stratum(
                conn,
                state_ids[fips],
                [("state_fips", "==", fips)] + age_constraints(lo, hi),
                "Age %s, %s" % (band_label(lo, hi), usps),
            )
            add_target(conn, sid, "person_count", year, value, SOURCE)
            n += 1
    for i, (lo, hi) in enumerate(AGE_BANDS):
        sid = add_stratum(conn, national_id, age_constraints(lo, hi), "Age %s, US" % band_label(lo, hi))
        add_target(conn, sid, "person_count", year, national[i], SOURCE)
        n += 1
    return n


def main(argv=None):
    return simple_main("etl_age", body)


if __name__ == "__main__":
    run_main(main)
