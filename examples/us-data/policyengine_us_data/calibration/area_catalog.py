"""Mirrors the DB-driven area enumeration of `local_area.py::coordinate_publish`
(and `calibration/local_h5/area_catalog.py`): states, congressional districts
(friendly names, at-large -> XX-01) and cities are read from the geographic
strata of `policy_data.db`, plus the separate national item. Each item carries
its LPT weight: a state weighs its number of districts, a district 1, NYC 11,
national 1.

    python -m policyengine_us_data.calibration.area_catalog --db-path DB --output areas.json

Output: a JSON array in deterministic order (states by FIPS, districts by
GEOID, NYC, US) of {"type", "id", "path", "weight"}.
"""

import argparse
import os
import sqlite3

from policyengine_us_data.utils.geography import (
    NYC_DISTRICT_GEOIDS,
    STATE_CODES,
    get_district_friendly_name,
)
from policyengine_us_data.utils.io import UsageError, atomic_write_text, run_main

CITY_WEIGHTS = {"NYC": 11}


def read_geography(db_path):
    if not os.path.isfile(db_path):
        raise UsageError("database not found: %s" % db_path)
    conn = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True)
    try:
        rows = conn.execute(
            "SELECT sc.constraint_variable, CAST(sc.value AS INTEGER) FROM stratum_constraints sc"
            " WHERE sc.stratum_id IN (SELECT stratum_id FROM stratum_constraints"
            "   GROUP BY stratum_id HAVING count(*) = 1)"
            " AND sc.constraint_variable IN ('state_fips', 'congressional_district_geoid')"
        ).fetchall()
    except sqlite3.DatabaseError as exc:
        raise UsageError("cannot read geography from %s: %s" % (db_path, exc))
    finally:
        conn.close()
    states = sorted({v for var, v in rows if var == "state_fips"})
    districts = sorted({v for var, v in rows if var == "congressional_district_geoid"})
    if not states or not districts:
        raise UsageError("%s has no state/district strata" % db_path)
    unknown = [s for s in states if s not in STATE_CODES]
    if unknown:
        raise UsageError("unknown state FIPS in database: %s" % unknown)
    return states, districts


def build_catalog(states, districts):
    per_state = {}
    for cd in districts:
        per_state[cd // 100] = per_state.get(cd // 100, 0) + 1
    items = []
    for fips in states:
        usps = STATE_CODES[fips]
        items.append({"type": "state", "id": usps, "path": "states/%s.h5" % usps, "weight": per_state.get(fips, 0)})
    for cd in districts:
        name = get_district_friendly_name(cd)
        items.append({"type": "district", "id": name, "path": "districts/%s.h5" % name, "weight": 1})
    if all(cd in districts for cd in NYC_DISTRICT_GEOIDS):
        items.append({"type": "city", "id": "NYC", "path": "cities/NYC.h5", "weight": CITY_WEIGHTS["NYC"]})
    items.append({"type": "national", "id": "US", "path": "national/US.h5", "weight": 1})
    return items


def to_json(items):
    import json

    lines = ",\n".join("  " + json.dumps(i, sort_keys=True) for i in items)
    return "[\n" + lines + "\n]\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description="Enumerate the local-area H5 work items from policy_data.db")
    parser.add_argument("--db-path", required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    states, districts = read_geography(args.db_path)
    items = build_catalog(states, districts)
    atomic_write_text(args.output, to_json(items))
    counts = {}
    for i in items:
        counts[i["type"]] = counts.get(i["type"], 0) + 1
    print("area_catalog: %d items %s -> %s" % (len(items), counts, args.output))
    return 0


if __name__ == "__main__":
    run_main(main)
