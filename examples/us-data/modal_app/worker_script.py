"""Mirrors `modal_app/worker_script.py` (the body of `build_areas_worker`):
builds one local-area HDF5 per work item from the calibrated clone-level
weights, the fit's geography and the source-imputed dataset, then validates
each file against the database targets of its geography.

    python -m modal_app.worker_script --work-items '[{"type":"state","id":"AL"}, ...]' \
        --weights-path W.npy --dataset-path DS.h5 --db-path DB --output-dir OUT \
        [--geography-path G.npz] [--calibration-package-path PKG] [--n-clones 430] \
        [--seed 42] [--no-validate] [--period 2024] \
        [--target-config policyengine_us_data/calibration/target_config.yaml] \
        [--validation-config policyengine_us_data/calibration/target_config_full.yaml]

The flags, the request shapes (legacy `--work-items` {type, id[, weight]} or
typed `--requests-json` AreaBuildRequest dicts) and the result are the real
ones. During the work stdout goes to stderr; the last stdout line is one JSON
object: {"completed": [...], "failed": [...], "errors": [{item, error,
traceback}], "validation_rows": [16 keys each], "validation_summary": {item:
{n_targets, n_sanity_fail, mean_rel_abs_error}}}. As in the real worker the
exit status is 0 even when items failed (each failure is caught per item); it
is non-zero only when setup fails (weights, geography, database), 2 with one
`error:` line for bad input.

Outputs (relative to OUT): states/AL.h5, districts/AL-01.h5, cities/NYC.h5,
national/US.h5. NYC: the real catalogue selects the five NYC counties; the
example has no county geography and uses districts NY-05..NY-15 instead.

Example-only knob: EXAMPLE_WORKER_FAIL_ITEMS=district:DE-01,... makes those
items fail (raised inside the per-item loop, as a real build error would be),
so tests can check that the caller notices a failed item of a worker that
exits 0.
"""

import argparse
import json
import os
import sys
import traceback

from policyengine_us_data.utils.geography import NYC_DISTRICT_GEOIDS, STATE_FIPS
from policyengine_us_data.utils.io import UsageError, require_file, run_main

AREA_DIRS = {"state": "states", "district": "districts", "city": "cities", "national": "national"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser()
    request_inputs = parser.add_mutually_exclusive_group(required=True)
    request_inputs.add_argument("--work-items", help="JSON work items kept for backwards compatibility")
    request_inputs.add_argument("--requests-json", help="JSON-serialized AreaBuildRequest payloads")
    parser.add_argument("--weights-path", required=True)
    parser.add_argument("--dataset-path", required=True)
    parser.add_argument("--db-path", required=True)
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--geography-path", default=None, help="Optional explicit path to geography_assignment.npz")
    parser.add_argument("--calibration-package-path", default=None, help="Optional calibration_package.pkl used as a geography fallback")
    parser.add_argument("--n-clones", type=int, default=430, help="Number of clones used in calibration")
    parser.add_argument("--seed", type=int, default=42, help="Random seed used in calibration")
    parser.add_argument("--no-validate", action="store_true", default=False, help="Skip per-item validation after each H5 build")
    parser.add_argument("--period", type=int, default=2024, help="Tax year for validation targets")
    parser.add_argument("--target-config", default=None, help="Path to training target_config.yaml")
    parser.add_argument("--validation-config", default=None, help="Path to target_config_full.yaml for validation")
    return parser.parse_args(argv)


def _work_item_key(item):
    if not isinstance(item, dict):
        return "unknown:<invalid-work-item>"
    return "%s:%s" % (item.get("type", "<missing-type>"), item.get("id", "<missing-id>"))


def _request_from_work_item(item, cd_geoids):
    """A legacy work item as a typed request (the example's USAreaCatalog); None skips it."""
    from policyengine_us_data.calibration.publish_local_area import get_district_friendly_name

    kind, area = str(item["type"]), str(item["id"])
    if kind == "state":
        if area not in STATE_FIPS:
            raise ValueError("Unknown state code: %s" % area)
        fips = STATE_FIPS[area]
        cds = tuple(cd for cd in cd_geoids if int(cd) // 100 == fips)
        if not cds:
            return None  # the legacy path skips a state with no districts in the geography
        return _request("state", area, "states/%s.h5" % area, cds, "state", (str(fips),))
    if kind == "district":
        matches = [cd for cd in cd_geoids if get_district_friendly_name(cd) == area]
        if not matches:
            raise ValueError("No matching geography found for district: %s" % area)
        return _request("district", area, "districts/%s.h5" % area, (matches[0],), "district", (matches[0],))
    if kind == "city":
        if area != "NYC":
            raise ValueError("Unknown city: %s" % area)
        cds = tuple(cd for cd in cd_geoids if int(cd) in NYC_DISTRICT_GEOIDS)
        if not cds:
            raise ValueError("No matching geography found for city: %s" % area)
        return _request("city", "NYC", "cities/NYC.h5", cds, "district", cds)
    if kind == "national":
        if area != "US":
            raise ValueError("Unknown national request: %s" % area)
        return {
            "area_type": "national", "area_id": "US", "display_name": "US", "output_relative_path": "national/US.h5",
            "filters": [], "validation_geo_level": "national", "validation_geographic_ids": ["US"], "metadata": {},
        }
    raise ValueError("Unknown item type: %s" % kind)


def _request(area_type, area_id, rel, cds, geo_level, geo_ids):
    return {
        "area_type": area_type,
        "area_id": area_id,
        "display_name": area_id,
        "output_relative_path": rel,
        "filters": [{"geography_field": "cd_geoid", "op": "in", "value": [str(c) for c in cds]}],
        "validation_geo_level": geo_level,
        "validation_geographic_ids": [str(g) for g in geo_ids],
        "metadata": {},
    }


def _resolve_output_path(output_dir, rel):
    """The request's output path, refused when it escapes the output directory."""
    if not isinstance(rel, str) or not rel or os.path.isabs(rel) or ".." in rel.split("/"):
        raise ValueError("output_relative_path must be a relative path without '..': %r" % (rel,))
    root = os.path.realpath(output_dir)
    target = os.path.realpath(os.path.join(root, rel))
    if os.path.commonpath([root, target]) != root or target == root:
        raise ValueError("output_relative_path must stay within the worker output_dir")
    return target


def _build_kwargs(request):
    if request["area_type"] == "national":
        return {}
    filters = request.get("filters") or []
    if len(filters) != 1:
        raise ValueError("%s requests must carry exactly one build filter" % request["area_type"])
    f = filters[0]
    if f.get("geography_field") == "cd_geoid" and f.get("op") in ("in", "eq"):
        values = f["value"] if f["op"] == "in" else [f["value"]]
        return {"cd_subset": [str(v) for v in values]}
    raise ValueError("Unsupported build filter for %s: %s:%s" % (request["area_type"], f.get("geography_field"), f.get("op")))


def _validation_setup(args):
    """Validation targets (validation config: exclude, then include) and the training mask."""
    from policyengine_us_data.calibration.unified_calibration import _match_rules, load_target_config
    from policyengine_us_data.calibration.validate_staging import _query_all_active_targets

    targets = _query_all_active_targets(args.db_path, args.period)
    if args.validation_config:
        cfg = load_target_config(args.validation_config)
        if cfg.get("exclude"):
            targets = [t for t, hit in zip(targets, _match_rules(targets, cfg["exclude"])) if not hit]
        if cfg.get("include"):
            targets = [t for t, hit in zip(targets, _match_rules(targets, cfg["include"])) if hit]
    training = [True] * len(targets)
    if args.target_config:
        include = load_target_config(args.target_config).get("include", [])
        if include:
            training = _match_rules(targets, include)
    print("Validation ready: %d targets" % len(targets), file=sys.stderr)
    return targets, training


def _validate(request, path, targets, training, period):
    from policyengine_us_data.calibration.publish_local_area import written_arrays
    from policyengine_us_data.calibration.validate_staging import validate_area
    from policyengine_us_data.utils.h5io import read_dataset

    level = request.get("validation_geo_level")
    ids = {str(i) for i in request.get("validation_geographic_ids") or []}
    if level is None or request["area_type"] not in AREA_DIRS:
        return []
    pairs = [(t, tr) for t, tr in zip(targets, training) if t["geo_level"] == level and (level == "national" or t["geographic_id"] in ids)]
    if not pairs:
        return []
    area = written_arrays(path) or read_dataset(path)[:2]
    return validate_area(
        area, [t for t, _ in pairs], [tr for _, tr in pairs],
        AREA_DIRS[request["area_type"]], request["area_id"], request["display_name"], period,
    )


def main(argv=None):
    args = parse_args(argv)
    import numpy as np

    from policyengine_us_data.calibration.publish_local_area import build_h5, load_calibration_geography
    from policyengine_us_data.utils.h5io import read_dataset

    original_stdout = sys.stdout
    sys.stdout = sys.stderr
    try:
        require_file(args.weights_path, "weights (--weights-path)")
        require_file(args.dataset_path, "dataset (--dataset-path)")
        require_file(args.db_path, "database (--db-path)")
        try:
            weights = np.load(args.weights_path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise UsageError("cannot read weights %s: %s" % (args.weights_path, exc))
        n_records = len(read_dataset(args.dataset_path, names=["household_id"])[0]["household_id"])
        try:
            geography = load_calibration_geography(
                weights_path=args.weights_path,
                n_records=n_records,
                n_clones=args.n_clones,
                geography_path=args.geography_path,
                calibration_package_path=args.calibration_package_path,
            )
        except ValueError as exc:
            raise UsageError(str(exc))
        print("Loaded geography: %d clones x %d records" % (geography.n_clones, geography.n_records), file=sys.stderr)
        cd_geoids = sorted({str(c) for c in geography.cd_geoid}, key=int)
        inject = {k for k in os.environ.get("EXAMPLE_WORKER_FAIL_ITEMS", "").split(",") if k}

        if args.requests_json is not None:
            inputs = [("requests", r) for r in json.loads(args.requests_json)]
        else:
            try:
                items = json.loads(args.work_items)
            except ValueError as exc:
                raise UsageError("--work-items is not valid JSON: %s" % exc)
            inputs = [("work_items", i) for i in items]
        targets = training = None
        if not args.no_validate:
            targets, training = _validation_setup(args)

        results = {"completed": [], "failed": [], "errors": [], "validation_rows": [], "validation_summary": {}}
        for mode, raw in inputs:
            key = _work_item_key(raw) if mode == "work_items" else "unknown:<invalid-request>"
            try:
                request = _request_from_work_item(raw, cd_geoids) if mode == "work_items" else raw
                if request is None:
                    print("Skipping %s: no matching geography in legacy work item" % key, file=sys.stderr)
                    continue
                key = "%s:%s" % (request["area_type"], request["area_id"])
                if key in inject:
                    raise RuntimeError("EXAMPLE_WORKER_FAIL_ITEMS: injected failure of %s" % key)
                path = _resolve_output_path(args.output_dir, request["output_relative_path"])
                os.makedirs(os.path.dirname(path), exist_ok=True)
                kwargs = _build_kwargs(request)
                if request["area_type"] == "national" and len(weights) // n_records != geography.n_clones:
                    raise ValueError(
                        "National weights have %d clones but geography has %d. Use the matching saved geography artifact."
                        % (len(weights) // n_records, geography.n_clones)
                    )
                build_h5(weights=weights, geography=geography, dataset_path=args.dataset_path, output_path=path, **kwargs)
                results["completed"].append(key)
                print("Completed %s" % key, file=sys.stderr)
                if targets is not None:
                    try:
                        rows = _validate(request, path, targets, training, args.period)
                        results["validation_rows"].extend(rows)
                        rae = [r["rel_abs_error"] for r in rows if r["rel_abs_error"] != float("inf")]
                        results["validation_summary"][key] = {
                            "n_targets": len(rows),
                            "n_sanity_fail": sum(1 for r in rows if r["sanity_check"] == "FAIL"),
                            "mean_rel_abs_error": round(sum(rae) / len(rae), 4) if rae else 0.0,
                        }
                    except Exception as exc:  # as in the real worker: a validation error only warns
                        print("  Validation failed for %s: %s" % (key, exc), file=sys.stderr)
            except Exception as exc:  # one bad item must not sink the batch
                results["failed"].append(key)
                results["errors"].append({"item": key, "error": str(exc), "traceback": traceback.format_exc()})
                print("FAILED %s: %s" % (key, exc), file=sys.stderr)
    finally:
        sys.stdout = original_stdout
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    run_main(main)
