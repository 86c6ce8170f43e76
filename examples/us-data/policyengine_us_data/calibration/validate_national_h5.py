"""Mirrors `policyengine_us_data.calibration.validate_national_h5`: prints the
weighted national totals of a national US.h5, then `STRUCTURAL CHECKS` with
`  [PASS|FAIL|WARN] check: detail` lines and `k/n passed, f failed`. Exit
status 0 when nothing failed, else 1 (the real pipeline only warns on 1).

    python -m policyengine_us_data.calibration.validate_national_h5 --h5-path US.h5 \
        [--hf-path hf://...] [--compare-h5-path OTHER.h5] [--compare-hf-path hf://...]

The example cannot download `hf://` paths (the real one does, with
HUGGING_FACE_TOKEN): pass --h5-path.
"""

import argparse
import sys

from policyengine_us_data.utils.io import UsageError, run_main

DEFAULT_HF_PATH = "hf://policyengine/policyengine-us-data/national/US.h5"
VARIABLES = (
    "household_count",
    "person_count",
    "employment_income",
    "self_employment_income",
    "social_security",
    "adjusted_gross_income",
    "snap",
    "tanf",
    "aca_ptc",
    "state_income_tax",
)
COUNT_VARS = {"household_count", "person_count"}


def resolve_dataset_path(dataset_path):
    if dataset_path.startswith("hf://"):
        raise UsageError("the example cannot download %s; pass --h5-path with a local file" % dataset_path)
    return dataset_path


def totals(path):
    import numpy as np

    from policyengine_us_data.utils.h5io import read_dataset
    from policyengine_us_data.utils.simulation import person_household_row

    data, _, _ = read_dataset(path)
    w = data["household_weight"]
    rows = person_household_row(data["household_id"], data["person_household_id"])
    out = {}
    for var in VARIABLES:
        if var == "household_count":
            out[var] = float(w.sum())
        elif var == "person_count":
            out[var] = float(w[rows].sum())
        elif var in data:
            values = data[var].astype(np.float64)
            out[var] = float(np.dot(values, w if len(values) == len(w) else w[rows]))
    return data, rows, out


def structural_checks(data, rows):
    import numpy as np

    w = data["household_weight"]
    checks = [
        ("household_weight_positive", bool(np.all(w > 0)), "%d households, min weight %.4g" % (len(w), float(w.min()) if len(w) else 0.0)),
        ("household_ids_unique", len(np.unique(data["household_id"])) == len(data["household_id"]), "%d ids" % len(data["household_id"])),
        ("persons_have_households", bool(len(rows) == len(data["person_household_id"])), "%d persons" % len(rows)),
        ("no_nan_values", all(not np.isnan(a).any() for a in data.values() if a.dtype.kind == "f"), "float arrays checked"),
    ]
    results = [{"check": name, "status": "PASS" if ok else "FAIL", "detail": detail} for name, ok, detail in checks]
    if len(w) and float(w.sum()) < 1e6:
        results.append({"check": "population_scale", "status": "WARN", "detail": "weighted households %.0f < 1e6" % float(w.sum())})
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description="Validate national US.h5")
    parser.add_argument("--h5-path", default=None, help="Local path to US.h5")
    parser.add_argument("--hf-path", default=DEFAULT_HF_PATH, help="HF path to US.h5 (default: %s)" % DEFAULT_HF_PATH)
    parser.add_argument("--compare-h5-path", default=None, help="Optional local path to comparison US.h5")
    parser.add_argument("--compare-hf-path", default=None, help="Optional HF path to comparison US.h5")
    args = parser.parse_args(argv)
    dataset_path = args.h5_path or args.hf_path
    resolved = resolve_dataset_path(dataset_path)
    print("Loading %s..." % dataset_path)
    data, rows, values = totals(resolved)
    print("Households in file: {:,}".format(len(data["household_id"])))
    print("\n" + "=" * 70)
    print("NATIONAL H5 VALUES")
    print("=" * 70)
    for var, val in values.items():
        print(("  {:45s} {:>15,.0f}" if var in COUNT_VARS else "  {:45s} ${:>15,.0f}").format(var, val))
    compare = args.compare_h5_path or args.compare_hf_path
    if compare:
        _, _, other = totals(resolve_dataset_path(compare))
        print("\n" + "=" * 70)
        print("COMPARISON TO %s" % compare)
        print("=" * 70)
        for var, val in values.items():
            if other.get(var):
                print("  {:35s} {:>+8.1f}%".format(var, (val - other[var]) / other[var] * 100))
    print("\n" + "=" * 70)
    print("STRUCTURAL CHECKS")
    print("=" * 70)
    results = structural_checks(data, rows)
    for r in results:
        print("  [%s] %s: %s" % (r["status"], r["check"], r["detail"]))
    n_pass = sum(1 for r in results if r["status"] == "PASS")
    n_fail = sum(1 for r in results if r["status"] == "FAIL")
    print("\n%d/%d passed, %d failed" % (n_pass, len(results), n_fail))
    return 0 if n_fail == 0 else 1


if __name__ == "__main__":
    run_main(main)
