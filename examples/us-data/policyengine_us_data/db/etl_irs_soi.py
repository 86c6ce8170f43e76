"""Mirrors `policyengine_us_data.db.etl_irs_soi`: IRS Statistics of Income
targets. Per state: tax-unit counts by AGI band (`adjusted_gross_income`
range constraints) and total AGI; per congressional district: total AGI.
(In this example a household is one tax unit.)
    python -m policyengine_us_data.db.etl_irs_soi --year 2024
"""

from policyengine_us_data.db._common import (
    AGI_BAND_UNITS_PER_CAPITA,
    AGI_BANDS,
    PER_CAPITA,
    add_stratum,
    add_target,
    district_population,
    geo_strata,
    noise,
    rng,
    simple_main,
)
from policyengine_us_data.utils.geography import STATE_CODES
from policyengine_us_data.utils.io import run_main

SOURCE = "IRS SOI"
IRS_SOI_LAG_YEARS = 2


def band_constraints(lo, hi):
    c = []
    if lo is not None:
        c.append(("adjusted_gross_income", ">=", lo))
    if hi is not None:
        c.append(("adjusted_gross_income", "<", hi))
    return c


def band_label(lo, hi):
    if lo is None:
        return "AGI < %d" % hi
    if hi is None:
        return "AGI >= %d" % lo
    return "AGI %d-%d" % (lo, hi)


def body(conn, year):
    r = rng(year, "etl_irs_soi")
    _, state_ids, district_ids = geo_strata(conn)
    district_pops = district_population(conn, year)
    n = 0
    state_pops = {}
    state_affluence = {}
    for fips in sorted(state_ids):
        state_affluence[fips] = noise(r, 0.12)
    for cd in sorted(district_ids):
        pop = district_pops[cd]
        fips = cd // 100
        state_pops[fips] = state_pops.get(fips, 0.0) + pop
        agi = pop * PER_CAPITA["adjusted_gross_income"] * state_affluence[fips] * noise(r, 0.15)
        add_target(conn, district_ids[cd], "adjusted_gross_income", year, round(agi, 2), SOURCE)
        n += 1
    for fips in sorted(state_ids):
        pop = state_pops[fips]
        tilt = state_affluence[fips]
        agi = pop * PER_CAPITA["adjusted_gross_income"] * tilt * noise(r, 0.03)
        add_target(conn, state_ids[fips], "adjusted_gross_income", year, round(agi, 2), SOURCE)
        n += 1
        for i, (lo, hi) in enumerate(AGI_BANDS):
            # richer states have fewer low-AGI and more high-AGI units
            skew = tilt ** (i - 2) * noise(r, 0.06)
            sid = add_stratum(
                conn,
                state_ids[fips],
                [("state_fips", "==", fips)] + band_constraints(lo, hi),
                "%s, %s" % (band_label(lo, hi), STATE_CODES[fips]),
            )
            add_target(conn, sid, "tax_unit_count", year, round(pop * AGI_BAND_UNITS_PER_CAPITA[i] * skew), SOURCE)
            n += 1
    return n


def add_lag(parser):
    # The real module's --lag: years between the SOI data and the target year
    # (IRS_SOI_LAG_YEARS). The twin's targets are synthetic, so it is accepted
    # and reported only.
    parser.add_argument("--lag", type=int, default=IRS_SOI_LAG_YEARS, help="SOI data lag in years (default %(default)s)")


def main(argv=None):
    return simple_main("etl_irs_soi", body, extra_args_fn=add_lag)


if __name__ == "__main__":
    run_main(main)
