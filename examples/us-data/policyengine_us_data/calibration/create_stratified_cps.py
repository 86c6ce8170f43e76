"""Mirrors `policyengine_us_data.calibration.create_stratified_cps`: shrinks
the extended CPS for calibration by keeping every household in the top 1% of
AGI and a seeded uniform sample of the rest (re-weighted by the inverse
sampling rate), preserving household order.

    python -m policyengine_us_data.calibration.create_stratified_cps \
        --input extended_cps_2024.h5 --output stratified_extended_cps_2024.h5 \
        [--target-households K] [--top-percent 1.0] [--seed 0]

Default K is half the input households (about the base CPS size).
"""

import argparse
import time

from policyengine_us_data.utils.io import UsageError, require_file, run_main


def stratify(v, entities, target, top_percent, seed):
    import numpy as np

    from policyengine_us_data.utils.simulation import person_household_row

    n = len(v["household_id"])
    agi = v["adjusted_gross_income"]
    w = v["household_weight"]
    order = np.argsort(agi, kind="stable")
    cw = np.cumsum(w[order]) / w.sum()
    top = np.zeros(n, bool)
    top[order[cw > 1.0 - top_percent / 100.0]] = True
    n_top = int(top.sum())
    rest = np.flatnonzero(~top)
    n_sample = max(0, min(len(rest), target - n_top))
    rng = np.random.default_rng([seed, 5])
    sampled = np.sort(rng.choice(rest, size=n_sample, replace=False)) if n_sample else rest[:0]
    keep = np.zeros(n, bool)
    keep[top] = True
    keep[sampled] = True
    scale = np.where(top, 1.0, len(rest) / max(n_sample, 1))
    rows = person_household_row(v["household_id"], v["person_household_id"])
    pkeep = keep[rows]
    out = {}
    for name, arr in v.items():
        if entities[name] == "household":
            out[name] = arr[keep]
        else:
            out[name] = arr[pkeep]
    out["household_weight"] = np.round(w[keep] * scale[keep], 4)
    return out, n_top, n_sample


def main(argv=None):
    parser = argparse.ArgumentParser(description="Create the stratified extended CPS")
    parser.add_argument("--input", required=True, help="extended_cps_2024.h5")
    parser.add_argument("--output", required=True)
    parser.add_argument("--target-households", type=int, default=None)
    parser.add_argument("--top-percent", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    require_file(args.input, "input dataset")
    if not 0.0 <= args.top_percent <= 100.0:
        raise UsageError("--top-percent must be within [0, 100]")
    t0 = time.perf_counter()

    from policyengine_us_data.utils.h5io import read_dataset, write_dataset

    v, entities, period = read_dataset(args.input)
    if "adjusted_gross_income" not in v or "household_weight" not in v:
        raise UsageError("%s is not an extended CPS dataset" % args.input)
    n = len(v["household_id"])
    target = args.target_households if args.target_households is not None else max(1, n // 2)
    if target < 1:
        raise UsageError("--target-households must be >= 1")
    out, n_top, n_sample = stratify(v, entities, target, args.top_percent, args.seed)
    write_dataset(args.output, out, entities, period)
    print(
        "create_stratified_cps: %d -> %d households (%d top, %d sampled) -> %s (%.2fs)"
        % (n, n_top + n_sample, n_top, n_sample, args.output, time.perf_counter() - t0)
    )
    return 0


if __name__ == "__main__":
    run_main(main)
