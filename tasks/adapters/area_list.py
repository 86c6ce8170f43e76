"""The areas to build, enumerated from the database as the real coordinator does it.

    python area_list.py --db-path DB --output areas.json

Runs the inline code of `coordinate_publish` (modal_app/local_area.py:884-929) with the package's
own functions: the districts are `get_all_cds_from_database("sqlite:///DB")`, the states
`STATE_CODES` (51, DC included), the district ids `get_district_friendly_name`, the city NYC; the
LPT weights are a state's district count, 1 per district, 11 for NYC (3 for any other city). The
national file, which the real pipeline builds in its own step (LA:1062-1228), is appended as
`national/US` with weight 1.

Output: a JSON list of {"type", "id", "path", "weight"} (the schema tasks/areas.ts reads), in the
coordinator's order: states, districts, cities, then national.
Exit status: 1 when the database lists no districts, 2 on bad usage.
"""

import argparse
import json
import os
import sys
from collections import Counter

CITY_WEIGHTS = {"NYC": 11}


def main(argv):
    parser = argparse.ArgumentParser(description="Enumerate the area work items from policy_data.db")
    parser.add_argument("--db-path", required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    if not os.path.isfile(args.db_path):
        sys.stderr.write("area_list: error: database not found: %s\n" % args.db_path)
        return 2
    sys.path.insert(0, os.getcwd())
    from policyengine_us_data.calibration.calibration_utils import STATE_CODES, get_all_cds_from_database
    from policyengine_us_data.calibration.publish_local_area import get_district_friendly_name

    cds = get_all_cds_from_database("sqlite:///%s" % os.path.abspath(args.db_path))
    states = list(STATE_CODES.values())
    districts = [get_district_friendly_name(cd) for cd in cds]
    cities = ["NYC"]
    if not districts:
        sys.stderr.write("area_list: error: %s has no congressional_district_geoid constraints; build the database first\n" % args.db_path)
        return 1
    cds_per_state = Counter(d.split("-")[0] for d in districts)
    items = [{"type": "state", "id": s, "path": "states/%s.h5" % s, "weight": cds_per_state.get(s, 1)} for s in states]
    items += [{"type": "district", "id": d, "path": "districts/%s.h5" % d, "weight": 1} for d in districts]
    items += [{"type": "city", "id": c, "path": "cities/%s.h5" % c, "weight": CITY_WEIGHTS.get(c, 3)} for c in cities]
    items.append({"type": "national", "id": "US", "path": "national/US.h5", "weight": 1})
    tmp = args.output + ".tmp"
    with open(tmp, "w") as f:
        f.write("[\n" + ",\n".join("  " + json.dumps(i) for i in items) + "\n]\n")
    os.replace(tmp, args.output)
    print("area_list: %d states, %d districts, %d cities and national -> %s" % (len(states), len(districts), len(cities), args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
