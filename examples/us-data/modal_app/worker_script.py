"""Mirrors `modal_app/worker_script.py` (the body of `build_areas_worker`):
builds one local-area HDF5 per work item from the calibrated clone-level
weights, the geography assignment and the source-imputed dataset.

    python -m modal_app.worker_script --work-items '[{"type":"state","id":"AL"}, ...]' \
        --weights-path W.npy --geography-path G.npz --dataset-path DS.h5 \
        --db-path DB --output-dir OUT --n-clones N --seed 42 [--validate]

Items: {"type": "state"|"district"|"city"|"national", "id": ..., "path"?: ...}.
Outputs (relative to OUT, which is where `path` must stay):
states/AL.h5, districts/AL-01.h5, cities/NYC.h5, national/US.h5.
An area file holds every clone column assigned to the area with a nonzero
weight: household arrays (household_weight = calibrated weight, the clone's
state / district, state income tax recomputed for that state) and the
members of those households, in column order.

NYC: the real catalogue selects the five NYC counties; this example has no
county geography and uses districts NY-05..NY-15 instead.

The national item uses whichever weights/geography are passed (the caller
passes the national_ fit outputs). With --geography-path omitted the
geography comes from --calibration-package-path (the real fallback order).

Prints one JSON line at the end: {"completed": [...], "failed": [...],
"errors": [...]} (+ "validation_rows"/"validation_summary" with
--validate). Exit status 0 if every item completed, 1 if any failed, 2 on
bad input. sqlite3 and the calibration code are only imported with
--validate, to keep one invocation fast.
"""

import argparse
import json
import os
import sys
import time

from policyengine_us_data.utils.geography import (
    NYC_DISTRICT_GEOIDS,
    STATE_FIPS,
    parse_district_friendly_name,
)
from policyengine_us_data.utils.io import UsageError, require_file, run_main

DIRS = {"state": "states", "district": "districts", "city": "cities", "national": "national"}
CITIES = {"NYC": NYC_DISTRICT_GEOIDS}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Build local-area H5 files (example worker)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--work-items", help='JSON list of {"type", "id"[, "path"]}')
    src.add_argument("--requests-json", help='JSON list of {"area_type", "area_id"[, "output_relative_path"]}')
    p.add_argument("--weights-path", required=True)
    p.add_argument("--geography-path", default=None)
    p.add_argument("--calibration-package-path", default=None)
    p.add_argument("--dataset-path", required=True)
    p.add_argument("--db-path", required=True)
    p.add_argument("--output-dir", required=True)
    p.add_argument("--n-clones", type=int, required=True)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--target-config", default=None, help="accepted for parity")
    p.add_argument("--validation-config", default=None, help="accepted for parity")
    p.add_argument(
        "--overrides-dir",
        default=None,
        help="per-area manual adjustments: DIR/<states|districts|cities|national>/<ID>.json = {\"weight_scale\": x}",
    )
    p.add_argument("--validate", dest="validate", action="store_true", help="check each H5 against DB targets")
    p.add_argument("--no-validate", dest="validate", action="store_false")
    p.set_defaults(validate=False)
    return p.parse_args(argv)


def parse_items(args):
    raw = args.work_items if args.work_items is not None else args.requests_json
    try:
        items = json.loads(raw)
    except ValueError as exc:
        raise UsageError("work items are not valid JSON: %s" % exc)
    if not isinstance(items, list):
        raise UsageError("work items must be a JSON list")
    if args.requests_json is not None:
        items = [
            {"type": r.get("area_type"), "id": r.get("area_id"), "path": r.get("output_relative_path")}
            if isinstance(r, dict) else r
            for r in items
        ]
    return items


def resolve(item, out_dir):
    """(type, id, selector, absolute output path) or raise ValueError."""
    if not isinstance(item, dict):
        raise ValueError("work item is not an object: %r" % (item,))
    kind, area = item.get("type"), item.get("id")
    if kind not in DIRS or not isinstance(area, str) or not area:
        raise ValueError("bad work item %r" % (item,))
    if kind == "state":
        if area not in STATE_FIPS:
            raise ValueError("unknown state %r" % area)
        selector = ("state", STATE_FIPS[area])
    elif kind == "district":
        selector = ("district", (parse_district_friendly_name(area),))
    elif kind == "city":
        if area not in CITIES:
            raise ValueError("unknown city %r" % area)
        selector = ("district", CITIES[area])
    else:
        if area != "US":
            raise ValueError("unknown national id %r" % area)
        selector = ("all", None)
    rel = item.get("path") or "%s/%s.h5" % (DIRS[kind], area)
    if not isinstance(rel, str) or os.path.isabs(rel):
        raise ValueError("output path must be relative: %r" % (rel,))
    root = os.path.realpath(out_dir)
    target = os.path.realpath(os.path.join(root, rel))
    if os.path.commonpath([root, target]) != root or target == root:
        raise ValueError("output path escapes output dir: %r" % (rel,))
    return kind, area, selector, target, rel


def load_inputs(args):
    import numpy as np

    require_file(args.weights_path, "weights")
    require_file(args.dataset_path, "dataset")
    require_file(args.db_path, "database")
    try:
        weights = np.load(args.weights_path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UsageError("cannot read weights %s: %s" % (args.weights_path, exc))
    if args.geography_path:
        require_file(args.geography_path, "geography")
        try:
            with np.load(args.geography_path, allow_pickle=False) as z:
                cd = z["cd_geoid"].astype(np.int64)
                n_clones = int(z["n_clones"]) if "n_clones" in z.files else args.n_clones
        except (OSError, ValueError, KeyError) as exc:
            raise UsageError("cannot read geography %s: %s" % (args.geography_path, exc))
    elif args.calibration_package_path:
        import pickle

        require_file(args.calibration_package_path, "calibration package")
        with open(args.calibration_package_path, "rb") as f:
            package = pickle.load(f)
        cd = np.asarray(package["cd_geoid"], dtype=np.int64)
        n_clones = int(package["metadata"]["n_clones"])
    else:
        raise UsageError("need --geography-path or --calibration-package-path")
    if n_clones != args.n_clones:
        raise UsageError("--n-clones %d does not match the geography (%d clones)" % (args.n_clones, n_clones))
    if weights.ndim != 1 or len(weights) != len(cd):
        raise UsageError("weights (%d) and geography (%d) differ in length" % (weights.size, len(cd)))

    from policyengine_us_data.utils.h5io import read_dataset

    data, entities, period = read_dataset(args.dataset_path)
    n_records = len(data["household_id"])
    if n_records * args.n_clones != len(cd):
        raise UsageError(
            "dataset has %d records; %d x %d clones != %d columns" % (n_records, n_records, args.n_clones, len(cd))
        )
    return weights, cd, data, entities, period


def area_override(overrides_dir, rel):
    """An area's manual adjustment, if its override file exists (a per-area input)."""
    if not overrides_dir:
        return 1.0
    path = os.path.join(overrides_dir, rel[: -len(".h5")] + ".json")
    if not os.path.exists(path):
        return 1.0
    with open(path) as f:
        scale = json.load(f).get("weight_scale", 1.0)
    if not isinstance(scale, (int, float)) or scale <= 0:
        raise UsageError("%s: weight_scale must be a positive number" % path)
    return float(scale)


def build_area(selector, weights, cd, data, entities, period, index, out_path, scale=1.0):
    import numpy as np

    from policyengine_us_data.utils.h5io import write_dataset
    from policyengine_us_data.utils.simulation import state_income_tax

    how, what = selector
    if how == "state":
        mask = (cd // 100) == what
    elif how == "district":
        mask = np.isin(cd, np.array(what, dtype=np.int64))
    else:
        mask = np.ones(len(cd), dtype=bool)
    cols = np.flatnonzero(mask & (weights > 0))
    n_records = len(data["household_id"])
    rec = cols % n_records
    start, count = index
    counts = count[rec]
    total = int(counts.sum())
    offsets = np.repeat(np.cumsum(counts) - counts, counts)
    pidx = np.repeat(start[rec], counts) + (np.arange(total) - offsets)
    k = len(cols)

    out = {}
    for name, arr in data.items():
        out[name] = arr[rec] if entities[name] == "household" else arr[pidx]
    new_ids = np.arange(1, k + 1, dtype=np.int64)
    out["original_household_id"] = data["household_id"][rec]
    out["household_id"] = new_ids
    out["household_weight"] = weights[cols].astype(np.float64) * scale
    out["congressional_district_geoid"] = cd[cols]
    out["state_fips"] = cd[cols] // 100
    if "adjusted_gross_income" in out:
        out["state_income_tax"] = state_income_tax(out["adjusted_gross_income"], out["state_fips"])
    out["person_id"] = np.arange(1, total + 1, dtype=np.int64)
    out["person_household_id"] = np.repeat(new_ids, counts)
    ents = dict(entities)
    ents["original_household_id"] = "household"
    write_dataset(out_path, out, ents, period, attrs={"n_clone_columns": np.int64(k)})
    return out, ents, k, total


def validate_area(kind, area, out, ents, db_path, period):
    """Compare the area's weighted totals with its own-geography DB targets."""
    import numpy as np

    from policyengine_us_data.calibration.unified_calibration import Features, load_db_targets, target_name
    from policyengine_us_data.utils.simulation import _RATE_TABLE

    targets, _ = load_db_targets(db_path, period)
    if kind == "state":
        level, gid = "state", str(STATE_FIPS[area])
    elif kind == "district":
        level, gid = "district", str(parse_district_friendly_name(area))
    elif kind == "national":
        level, gid = "national", "US"
    else:
        return []
    feats = Features(out, ents)
    w = out["household_weight"]
    rows = []
    for t in targets:
        if t["geo_level"] != level or t["geographic_id"] != gid:
            continue
        f = feats.get(t["variable"], t["constraints"])
        if t["variable"] == "state_income_tax":
            f = f * _RATE_TABLE[out["state_fips"]]
        est = float(np.dot(f, w))
        rows.append(
            {
                "area": "%s:%s" % (kind, area),
                "target": target_name(t),
                "target_value": t["value"],
                "estimate": round(est, 2),
                "rel_abs_error": round(abs(est - t["value"]) / abs(t["value"]), 6),
            }
        )
    return rows


def main(argv=None):
    t0 = time.perf_counter()
    args = parse_args(argv)
    if args.n_clones < 1:
        raise UsageError("--n-clones must be >= 1")
    items = parse_items(args)
    weights, cd, data, entities, period = load_inputs(args)

    from policyengine_us_data.utils.h5io import household_person_index

    index = household_person_index(data["household_id"], data["person_household_id"])
    completed, failed, errors, validation = [], [], [], []
    for item in items:
        key = "%s:%s" % (item.get("type"), item.get("id")) if isinstance(item, dict) else repr(item)
        try:
            kind, area, selector, out_path, rel = resolve(item, args.output_dir)
            scale = area_override(args.overrides_dir, rel)
            out, ents, k, n_persons = build_area(selector, weights, cd, data, entities, period, index, out_path, scale)
            if args.validate:
                validation.extend(validate_area(kind, area, out, ents, args.db_path, period))
            completed.append(key)
            print("built %s -> %s (%d households, %d persons)" % (key, rel, k, n_persons), file=sys.stderr)
        except Exception as exc:  # one bad item must not sink the batch
            failed.append(key)
            errors.append({"item": key, "error": "%s: %s" % (type(exc).__name__, exc)})
    result = {"completed": completed, "failed": failed, "errors": errors}
    if args.validate:
        errs = [r["rel_abs_error"] for r in validation]
        result["validation_rows"] = validation
        result["validation_summary"] = {
            "n_targets": len(errs),
            "mean_rel_abs_error": round(sum(errs) / len(errs), 6) if errs else None,
        }
    print("worker: %d completed, %d failed in %.3fs" % (len(completed), len(failed), time.perf_counter() - t0), file=sys.stderr)
    print(json.dumps(result, sort_keys=True))
    return 1 if failed else 0


if __name__ == "__main__":
    run_main(main)
