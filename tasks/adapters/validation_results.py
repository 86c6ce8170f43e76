"""validation_results.csv: every area's validation rows, as the real run writes them (modal_app/pipeline.py:516-654).

    python validation_results.py --areas areas.json --rows-dir DIR --output validation_results.csv

Reads DIR/<states|districts|cities|national>/<id>.json (written by run_areas.py) for every area
of areas.json, in that order, and writes the 16 columns of the real CSV with `csv.DictWriter`
(a missing key is written empty). Prints the real summary: rows, sanity failures, the mean
relative absolute error and the five worst areas.

Exit status: 1 when an area's rows file is missing, 2 on bad usage.
"""

import argparse
import csv
import json
import os
import sys

from _adapter import AREA_DIRS

CSV_COLUMNS = [
    "area_type", "area_id", "display_name", "district", "variable", "target_name", "period", "target_value",
    "sim_value", "error", "rel_error", "abs_error", "rel_abs_error", "sanity_check", "sanity_reason", "in_training",
]


def finite(x):
    return isinstance(x, (int, float)) and x not in (float("inf"), float("-inf")) and x == x


def main(argv):
    parser = argparse.ArgumentParser(description="Gather the areas' validation rows into one CSV")
    parser.add_argument("--areas", required=True)
    parser.add_argument("--rows-dir", required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    with open(args.areas) as f:
        areas = json.load(f)
    rows, missing = [], []
    for area in areas:
        path = os.path.join(args.rows_dir, AREA_DIRS[area["type"]], "%s.json" % area["id"])
        if not os.path.isfile(path):
            missing.append(path)
            continue
        with open(path) as f:
            rows.extend(json.load(f)["rows"])
    if missing:
        sys.stderr.write("validation_results: error: no validation rows for %d areas (first: %s); build the areas first\n" % (len(missing), missing[0]))
        return 1
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    tmp = args.output + ".tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in CSV_COLUMNS})
    os.replace(tmp, args.output)
    fails = sum(1 for r in rows if r.get("sanity_check") == "FAIL")
    rae = [r["rel_abs_error"] for r in rows if finite(r.get("rel_abs_error"))]
    per_area = {}
    for r in rows:
        if finite(r.get("rel_abs_error")):
            per_area.setdefault("%s:%s" % (r.get("area_type", ""), r.get("area_id", "")), []).append(r["rel_abs_error"])
    worst = sorted(per_area.items(), key=lambda kv: sum(kv[1]) / len(kv[1]), reverse=True)[:5]
    print("validation_results: %d rows from %d areas, %d sanity failures, mean RAE=%.4f -> %s" % (
        len(rows), len(areas), fails, sum(rae) / len(rae) if rae else 0.0, args.output))
    for key, vals in worst:
        print("  worst: %s mean RAE=%.4f" % (key, sum(vals) / len(vals)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
