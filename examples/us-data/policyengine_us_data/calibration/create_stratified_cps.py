"""Mirrors `policyengine_us_data.calibration.create_stratified_cps`: shrinks
the extended CPS for calibration by keeping every household in the top 1% of
AGI and a seeded uniform sample of the rest (re-weighted by the inverse
sampling rate), preserving household order.

    python -m policyengine_us_data.calibration.create_stratified_cps [TARGET] [--oversample-poor] [--seed=N]

The argv is parsed by hand, as in the real module: a whole number is the
target household count, `--seed=N` the seed (default 3526), `--top=` only
warns, anything else is ignored. Reads STORAGE_FOLDER/extended_cps_2024.h5,
writes stratified_extended_cps_2024.h5. The real default target is 12,000
households (about a tenth of its input); the twin's is that or half its
input, whichever is smaller, so the small twin still shrinks.
`--oversample-poor` is accepted; the twin samples the rest uniformly.
"""

import sys
import time

from policyengine_us_data.utils.io import UsageError, run_main

TOP_PERCENT = 1.0


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


def parse_argv(args):
    """(target or None, oversample_poor, seed) from the hand-parsed argv of the real module."""
    target, oversample, seed = None, False, 3526
    for arg in args:
        if arg == "--oversample-poor":
            oversample = True
        elif arg.startswith("--top="):
            print("WARNING: --top is no longer supported; ignoring '%s'." % arg)
        elif arg.startswith("--seed="):
            try:
                seed = int(arg.split("=")[1])
            except ValueError:
                raise UsageError("--seed= needs a whole number, got %r" % arg)
        elif arg.isdigit():
            target = int(arg)
    return target, oversample, seed


def main(argv=None):
    from policyengine_us_data.storage import STORAGE_FOLDER
    from policyengine_us_data.utils.h5io import read_dataset, write_dataset

    target, oversample, seed = parse_argv(sys.argv[1:] if argv is None else argv)
    t0 = time.perf_counter()
    source = str(STORAGE_FOLDER / "extended_cps_2024.h5")
    v, entities, period = read_dataset(source)
    if "adjusted_gross_income" not in v or "household_weight" not in v:
        raise UsageError("%s is not an extended CPS dataset" % source)
    n = len(v["household_id"])
    if target is None:
        target = max(1, min(12_000, n // 2))
    if target < 1:
        raise UsageError("the target household count must be >= 1")
    print("Creating stratified dataset: target households %d, oversample poor %s, seed %d" % (target, oversample, seed))
    out, n_top, n_sample = stratify(v, entities, target, TOP_PERCENT, seed)
    write_dataset(str(STORAGE_FOLDER / "stratified_extended_cps_2024.h5"), out, entities, period)
    print(
        "create_stratified_cps: %d -> %d households (%d top, %d sampled) -> stratified_extended_cps_2024.h5 (%.2fs)"
        % (n, n_top + n_sample, n_top, n_sample, time.perf_counter() - t0)
    )
    return 0


if __name__ == "__main__":
    run_main(main)
