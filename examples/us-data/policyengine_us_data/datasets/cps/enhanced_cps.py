"""Mirrors `policyengine_us_data.datasets.cps.enhanced_cps` (EnhancedCPS_2024):
the half-sample extended CPS with its household weights reweighted to the
national targets of `policy_data.db` (the real `build_loss_matrix` also reads
the calibration target CSVs and fits thousands of targets with torch).

    python -m policyengine_us_data.datasets.cps.enhanced_cps

No flags. Reads STORAGE_FOLDER/extended_cps_2024_half.h5 and
STORAGE_FOLDER/calibration/policy_data.db; writes enhanced_cps_2024.h5 and,
as the real one, `calibration_log.csv` in the working directory (a row per
target every 10 iterations: target_name,estimate,target,epoch,error,
rel_error,abs_error,rel_abs_error,loss). Deterministic: the starting weights'
jitter is seeded (1456, as the real `set_seeds(1456)`).
"""

import sqlite3
import time

from policyengine_us_data.utils.io import UsageError, atomic_write_text, run_main

YEAR = 2024
ITERATIONS = 200
LOG_EVERY = 10
LEARNING_RATE = 0.05


def national_targets(db_path, variables):
    """{variable: value} of the national stratum's targets for YEAR, for the variables the dataset has."""
    from policyengine_us_data.db._common import geo_strata

    conn = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True)
    try:
        national_id, _, _ = geo_strata(conn)
        rows = conn.execute(
            "SELECT variable, value FROM targets WHERE stratum_id = ? AND period = ? AND active = 1 ORDER BY variable",
            (national_id, YEAR),
        ).fetchall()
    except sqlite3.DatabaseError as exc:
        raise UsageError("cannot read %s: %s" % (db_path, exc))
    finally:
        conn.close()
    targets = {var: float(value) for var, value in rows if var in variables or var == "household_count"}
    if not targets:
        raise UsageError("%s has no national targets for %d (run etl_national_targets)" % (db_path, YEAR))
    return targets


def loss_matrix(v, entities, names):
    """Household-by-target matrix: each household's contribution to each national total."""
    import numpy as np

    from policyengine_us_data.utils.simulation import person_household_row

    n = len(v["household_id"])
    rows = person_household_row(v["household_id"], v["person_household_id"])
    columns = []
    for name in names:
        if name == "household_count":
            columns.append(np.ones(n))
        elif entities[name] == "household":
            columns.append(v[name].astype(float))
        else:
            columns.append(np.bincount(rows, weights=v[name].astype(float), minlength=n))
    return np.stack(columns, axis=1)


def reweight(weights, matrix, targets):
    """Adam on log weights for the mean squared relative error (the real `reweight` is Adam in
    torch, with dropout); returns (weights, log rows)."""
    import numpy as np

    log_w = np.log(np.maximum(weights, 1e-6))
    m = np.zeros_like(log_w)
    s = np.zeros_like(log_w)
    log = []
    for epoch in range(ITERATIONS + 1):
        w = np.exp(log_w)
        estimate = w @ matrix
        rel = estimate / targets - 1.0
        loss = float(np.mean(rel**2))
        if epoch % LOG_EVERY == 0:
            log.append((epoch, estimate.copy(), loss))
        if epoch == ITERATIONS:
            break
        grad = (2.0 / len(targets)) * (matrix * w[:, None]) @ (rel / targets)
        m = 0.9 * m + 0.1 * grad
        s = 0.999 * s + 0.001 * grad**2
        step = epoch + 1
        log_w -= LEARNING_RATE * (m / (1 - 0.9**step)) / (np.sqrt(s / (1 - 0.999**step)) + 1e-12)
    return np.exp(log_w), log


def log_csv(names, targets, log):
    lines = ["target_name,estimate,target,epoch,error,rel_error,abs_error,rel_abs_error,loss"]
    for epoch, estimate, loss in log:
        for name, est, target in zip(names, estimate, targets):
            error = est - target
            lines.append(
                "%s,%.10g,%.10g,%d,%.10g,%.10g,%.10g,%.10g,%.10g"
                % (name, est, target, epoch, error, error / target, abs(error), abs(error / target), loss)
            )
    return "\n".join(lines) + "\n"


def main(argv=None):
    import numpy as np

    from policyengine_us_data.storage import STORAGE_FOLDER
    from policyengine_us_data.utils.h5io import read_dataset, write_dataset

    t0 = time.perf_counter()
    v, entities, period = read_dataset(str(STORAGE_FOLDER / "extended_cps_2024_half.h5"))
    targets_by_name = national_targets(str(STORAGE_FOLDER / "calibration" / "policy_data.db"), set(v))
    names = sorted(targets_by_name)
    targets = np.array([targets_by_name[n] for n in names])
    rng = np.random.default_rng(1456)
    start = v["household_weight"] * rng.normal(1.0, 0.1, len(v["household_weight"]))
    weights, log = reweight(start, loss_matrix(v, entities, names), targets)
    out = dict(v)
    out["household_weight"] = np.round(weights, 4)
    write_dataset(str(STORAGE_FOLDER / "enhanced_cps_2024.h5"), out, entities, period)
    atomic_write_text("calibration_log.csv", log_csv(names, targets, log))
    print(
        "enhanced_cps: %d households, %d targets, loss %.4g -> %.4g -> enhanced_cps_2024.h5 (%.2fs)"
        % (len(weights), len(names), log[0][2], log[-1][2], time.perf_counter() - t0)
    )
    return 0


if __name__ == "__main__":
    run_main(main)
