"""Mirrors `policyengine_us_data.calibration.unified_calibration` (unified L0
calibration): clone the stratified CPS N times, assign every clone a
congressional district, build the sparse target-by-column matrix from
`policy_data.db`, then fit L0-gated clone-level weights.

Build the package (S2 `build_package`):

    python -m policyengine_us_data.calibration.unified_calibration --device cpu \
        --epochs 0 --build-only --db-path DB --dataset DS \
        --package-output calibration_package.pkl --n-clones 3 \
        --target-config calibration/target_config.yaml [--seed 42]

Fit from a package (S3 `fit_from_package`):

    python -m policyengine_us_data.calibration.unified_calibration --device cpu \
        --epochs 200 --package-path calibration_package.pkl \
        --target-config calibration/target_config.yaml --beta 0.65 \
        --lambda-l0 1e-7 --lambda-l2 1e-8 --learning-rate 0.15 --log-freq 100 \
        --seed 42 --output-dir DIR --checkpoint-output CKPT [--resume-from CKPT] \
        [--national]

Differences from the real module, on purpose:
- plain numpy (Adam on log-weights and hard-concrete gate logits with the
  deterministic gate; no torch, no sampling noise) so a run is bit-for-bit
  reproducible and a resumed fit equals an uninterrupted one;
- `--epochs` is the TOTAL number of epochs, also when resuming (the real
  resume treats it as additional epochs);
- the L0 and L2 penalties are means over columns (L2 on w / w_initial), so
  the real hyper-parameters give sensible strengths at this tiny scale;
- nothing time-, host- or path-dependent is written into any output.
"""

import argparse
import os
import sys
import time

from policyengine_us_data.utils.io import UsageError, require_file, run_main

PRESETS = {"local": 1e-8, "national": 1e-4}
BETA = 0.35
GAMMA = -0.1
ZETA = 1.1
INIT_KEEP_PROB = 0.999
LOG_WEIGHT_JITTER_SD = 0.05
LOG_ALPHA_JITTER_SD = 0.01
LAMBDA_L2 = 1e-12
LEARNING_RATE = 0.15
DEFAULT_EPOCHS = 200
DEFAULT_N_CLONES = 3
ADAM_B1, ADAM_B2, ADAM_EPS = 0.9, 0.999, 1e-8
PACKAGE_FORMAT = "policyengine-us-data-example/calibration-package/1"
CHECKPOINT_FORMAT = "policyengine-us-data-example/fit-checkpoint/1"
COUNT_VARIABLES = {"person_count": "person", "household_count": "household", "tax_unit_count": "household"}
STATE_DEPENDENT = {"state_income_tax"}
GEO_CONSTRAINTS = ("state_fips", "congressional_district_geoid")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Unified L0 calibration (example)")
    p.add_argument("--dataset", default=None, help="source-imputed stratified CPS .h5")
    p.add_argument("--db-path", default=None, help="policy_data.db")
    p.add_argument("--output", default=None, help="weights .npy (default OUTPUT_DIR/[national_]calibration_weights.npy)")
    p.add_argument("--output-dir", default=".", help="directory for fit outputs (default .)")
    p.add_argument("--n-clones", type=int, default=DEFAULT_N_CLONES)
    p.add_argument("--preset", choices=sorted(PRESETS), default=None)
    p.add_argument("--lambda-l0", type=float, default=None)
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help="TOTAL epochs (also when resuming)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--domain-variables", default=None)
    p.add_argument("--hierarchical-domains", default=None)
    p.add_argument("--skip-takeup-rerandomize", action="store_true")
    p.add_argument("--skip-source-impute", action="store_true", default=True)
    p.add_argument("--no-skip-source-impute", dest="skip_source_impute", action="store_false")
    p.add_argument("--target-config", default=None)
    p.add_argument("--county-level", action="store_true", help="accepted; the example has no counties")
    p.add_argument("--build-only", action="store_true")
    p.add_argument("--package-path", default=None)
    p.add_argument("--package-output", default=None)
    p.add_argument("--beta", type=float, default=BETA)
    p.add_argument("--lambda-l2", type=float, default=LAMBDA_L2)
    p.add_argument("--learning-rate", type=float, default=LEARNING_RATE)
    p.add_argument("--log-freq", type=int, default=None)
    p.add_argument("--workers", type=int, default=1, help="accepted; the example builds in one thread")
    p.add_argument("--checkpoint-output", default=None)
    p.add_argument("--resume-from", default=None)
    p.add_argument("--national", action="store_true", help="fit national targets only; outputs get the national_ prefix")
    args = p.parse_args(argv)
    if args.n_clones < 1:
        raise UsageError("--n-clones must be >= 1")
    if args.epochs < 0:
        raise UsageError("--epochs must be >= 0")
    if args.log_freq is not None and args.log_freq < 1:
        raise UsageError("--log-freq must be >= 1")
    if args.beta <= 0:
        raise UsageError("--beta must be > 0")
    if args.learning_rate <= 0:
        raise UsageError("--learning-rate must be > 0")
    if args.build_only and args.package_path:
        raise UsageError("--build-only and --package-path are mutually exclusive")
    if args.build_only and not args.package_output:
        raise UsageError("--build-only needs --package-output")
    if not args.package_path:
        require_file(args.dataset, "dataset (--dataset)")
        require_file(args.db_path, "database (--db-path)")
    if args.lambda_l0 is None:
        args.lambda_l0 = PRESETS[args.preset or ("national" if args.national else "local")]
    return args


# ----------------------------------------------------------------------------
# Targets and matrix
# ----------------------------------------------------------------------------


def load_db_targets(db_path, period):
    """Active baseline targets of ``period`` with their non-geo constraints."""
    import sqlite3

    conn = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True)
    try:
        rows = conn.execute(
            "SELECT o.target_id, o.stratum_id, o.variable, o.value, o.geo_level,"
            " o.geographic_id, COALESCE(o.domain_variable, '')"
            " FROM target_overview o WHERE o.active = 1 AND o.period = ? AND o.reform_id = 0"
            " ORDER BY o.target_id",
            (int(period),),
        ).fetchall()
        cons = conn.execute(
            "SELECT stratum_id, constraint_variable, operation, value FROM stratum_constraints"
            " ORDER BY stratum_id, constraint_variable, operation"
        ).fetchall()
        from policyengine_us_data.db._common import district_population

        pops = district_population(conn, int(period))
    except sqlite3.DatabaseError as exc:
        raise UsageError("cannot read targets from %s: %s" % (db_path, exc))
    finally:
        conn.close()
    constraints = {}
    for sid, var, op, val in cons:
        if var not in GEO_CONSTRAINTS:
            constraints.setdefault(sid, []).append((var, op, val))
    targets = []
    for tid, sid, var, value, geo, gid, dom in rows:
        if value is None or value == 0:
            continue  # relative error undefined
        targets.append(
            {
                "target_id": tid,
                "variable": var,
                "value": float(value),
                "geo_level": geo,
                "geographic_id": str(gid),
                "domain_variable": dom,
                "constraints": tuple(constraints.get(sid, ())),
            }
        )
    if not targets:
        raise UsageError("no active targets for period %s in %s" % (period, db_path))
    return targets, pops


def target_name(t):
    from policyengine_us_data.utils.geography import STATE_CODES, get_district_friendly_name

    geo = t["geo_level"]
    if geo == "district":
        where = get_district_friendly_name(int(t["geographic_id"]))
    elif geo == "state":
        where = STATE_CODES[int(t["geographic_id"])]
    else:
        where = "US"
    name = "%s/%s/%s" % (geo, where, t["variable"])
    if t["constraints"]:
        name += "/" + "&".join("%s%s%s" % c for c in t["constraints"])
    return sys.intern(name)


def _parse_value(raw):
    if raw in ("True", "true"):
        return True
    if raw in ("False", "false"):
        return False
    return float(raw)


def _compare(a, op, b):
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    if op == ">":
        return a > b
    if op == ">=":
        return a >= b
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    raise UsageError("unsupported constraint operation %r" % op)


class Features:
    """Per-record (household) contributions for (variable, constraints)."""

    def __init__(self, data, entities):
        import numpy as np

        from policyengine_us_data.utils.simulation import person_household_row

        self.np = np
        self.data = data
        self.entities = entities
        self.rows = person_household_row(data["household_id"], data["person_household_id"])
        self.n = len(data["household_id"])
        self.cache = {}

    def _entity(self, var):
        if var in COUNT_VARIABLES:
            return COUNT_VARIABLES[var]
        if var in STATE_DEPENDENT:
            return "household"
        if var not in self.entities:
            raise UsageError("dataset has no variable %r needed by a target" % var)
        return self.entities[var]

    def _values(self, var):
        np = self.np
        if var == "person_count":
            return np.ones(len(self.rows))
        if var in ("household_count", "tax_unit_count"):
            return np.ones(self.n)
        if var == "state_income_tax":  # recomputed per clone state: base = AGI
            return np.maximum(self.data["adjusted_gross_income"], 0.0)
        return self.data[var].astype(np.float64)

    def get(self, variable, constraints):
        key = (variable, constraints)
        if key in self.cache:
            return self.cache[key]
        np = self.np
        ent = self._entity(variable)
        vals = self._values(variable)
        mask = np.ones(len(vals), dtype=bool)
        for cvar, op, raw in constraints:
            cent = self._entity(cvar)
            cvals = self.data[cvar]
            m = _compare(cvals, op, _parse_value(raw))
            if cent == ent:
                mask &= m
            elif ent == "household":  # person constraint on household target: any member
                mask &= np.bincount(self.rows, weights=m, minlength=self.n) > 0
            else:  # household constraint on person target: broadcast
                mask &= m[self.rows]
        contrib = np.where(mask, vals, 0.0)
        if ent == "person":
            contrib = np.bincount(self.rows, weights=contrib, minlength=self.n)
        self.cache[key] = contrib
        return contrib


def assign_geography(district_pops, n_records, n_clones, seed):
    """Clone-level district assignment, proportional to DB district population
    (largest remainder, every district gets a column when there are enough),
    shuffled with ``seed``. Column c = clone * n_records + record."""
    import numpy as np

    cds = np.array(sorted(district_pops), dtype=np.int64)
    pop = np.array([district_pops[c] for c in cds], dtype=np.float64)
    total = n_records * n_clones
    floor_min = 1 if total >= len(cds) else 0
    spare = total - floor_min * len(cds)
    raw = pop / pop.sum() * spare
    quota = np.floor(raw).astype(np.int64)
    remainder = spare - int(quota.sum())
    order = np.lexsort((cds, -(raw - quota)))
    quota[order[:remainder]] += 1
    quota += floor_min
    rng = np.random.default_rng([seed, 7])
    cd = rng.permutation(np.repeat(cds, quota))
    return cd, cd // 100


def build_matrix(targets, features, cd_geoid, state_fips, n_records):
    import numpy as np

    from policyengine_us_data.utils.simulation import _RATE_TABLE

    n_cols = len(cd_geoid)
    rec = np.arange(n_cols) % n_records
    groups = {}
    for i, t in enumerate(targets):
        groups.setdefault((t["variable"], t["constraints"], t["geo_level"]), []).append(i)
    rows_l, cols_l, vals_l = [], [], []
    for (variable, constraints, level), idx in groups.items():
        f = features.get(variable, constraints)
        fcol = f[rec]
        if variable in STATE_DEPENDENT:
            fcol = fcol * _RATE_TABLE[state_fips]
        nz = np.flatnonzero(fcol)
        if level == "national":
            if len(idx) != 1:
                raise UsageError("duplicate national target %s" % variable)
            row = np.full(len(nz), idx[0], dtype=np.int64)
        else:
            geo = cd_geoid if level == "district" else state_fips
            lookup = np.full(int(geo.max()) + 1 if len(geo) else 1, -1, dtype=np.int64)
            for i in idx:
                g = int(targets[i]["geographic_id"])
                if g < len(lookup):
                    lookup[g] = i
            row = lookup[geo[nz]]
            keep = row >= 0
            nz, row = nz[keep], row[keep]
        rows_l.append(row)
        cols_l.append(nz)
        vals_l.append(fcol[nz])
    rows = np.concatenate(rows_l) if rows_l else np.zeros(0, np.int64)
    cols = np.concatenate(cols_l) if cols_l else np.zeros(0, np.int64)
    vals = np.concatenate(vals_l) if vals_l else np.zeros(0)
    order = np.lexsort((cols, rows))
    return rows[order].astype(np.int32), cols[order].astype(np.int32), vals[order].astype(np.float64)


def initial_weights(targets, rows, cols, vals, features, cd_geoid, base_weight, n_records, n_clones):
    """District household_count (else person_count/age) target per column."""
    import numpy as np

    n_cols = len(cd_geoid)
    w = np.repeat(base_weight[None, :], n_clones, axis=0).reshape(-1) / n_clones
    n_persons = features.get("person_count", ())
    rec = np.arange(n_cols) % n_records
    hh_target, pop_target = {}, {}
    for t in targets:
        if t["geo_level"] != "district":
            continue
        cd = int(t["geographic_id"])
        if t["variable"] == "household_count" and not t["constraints"]:
            hh_target[cd] = t["value"]
        elif t["variable"] == "person_count" and t["domain_variable"] == "age":
            pop_target[cd] = pop_target.get(cd, 0.0) + t["value"]
    order = np.argsort(cd_geoid, kind="stable")
    sorted_cd = cd_geoid[order]
    bounds = np.flatnonzero(np.r_[True, sorted_cd[1:] != sorted_cd[:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:]):
        cols_g = order[a:b]
        cd = int(sorted_cd[a])
        if cd in hh_target:
            w[cols_g] = hh_target[cd] / len(cols_g)
        elif cd in pop_target:
            persons = n_persons[rec[cols_g]].sum()
            if persons > 0:
                w[cols_g] = pop_target[cd] / persons
    return w


def build_package(args):
    import numpy as np

    from policyengine_us_data.calibration.target_config import keep_mask, load_target_config
    from policyengine_us_data.utils.h5io import read_dataset
    from policyengine_us_data.utils.io import package_version, sha256_file

    t0 = time.perf_counter()
    data, entities, period = read_dataset(args.dataset)
    for need in ("household_id", "person_household_id", "household_weight"):
        if need not in data:
            raise UsageError("%s lacks %s" % (args.dataset, need))
    targets, district_pops = load_db_targets(args.db_path, period)
    config_sha = None
    if args.target_config:
        config = load_target_config(args.target_config)
        mask = keep_mask(
            config,
            [t["variable"] for t in targets],
            [t["geo_level"] for t in targets],
            [t["domain_variable"] for t in targets],
        )
        targets = [t for t, k in zip(targets, mask) if k]
        config_sha = sha256_file(args.target_config)
        if not targets:
            raise UsageError("target config %s keeps no targets" % args.target_config)
    n_records = len(data["household_id"])
    cd_geoid, state_fips = assign_geography(district_pops, n_records, args.n_clones, args.seed)
    features = Features(data, entities)
    rows, cols, vals = build_matrix(targets, features, cd_geoid, state_fips, n_records)
    w0 = initial_weights(
        targets, rows, cols, vals, features, cd_geoid, data["household_weight"].astype(np.float64),
        n_records, args.n_clones,
    )
    names = [target_name(t) for t in targets]
    metadata = {
        "base_n_records": n_records,
        "dataset_sha256": sha256_file(args.dataset),
        "db_sha256": sha256_file(args.db_path),
        "matrix_builder": "example_coo",
        "n_clones": args.n_clones,
        "n_columns": n_records * args.n_clones,
        "n_records": n_records,
        "n_targets": len(targets),
        "nnz": int(len(vals)),
        "package_format": PACKAGE_FORMAT,
        "package_scope": "target_config" if args.target_config else "all_active_targets",
        "package_version": package_version(),
        "period": int(period),
        "seed": args.seed,
        "skip_county": not args.county_level,
        "target_config_sha256": config_sha,
    }
    package = {
        "X_sparse": {
            "format": "coo",
            "shape": (len(targets), n_records * args.n_clones),
            "row": rows,
            "col": cols,
            "data": vals,
        },
        "targets_df": {
            "target_id": np.array([t["target_id"] for t in targets], dtype=np.int64),
            "variable": np.array([t["variable"] for t in targets], dtype=str),
            "geo_level": np.array([t["geo_level"] for t in targets], dtype=str),
            "geographic_id": np.array([t["geographic_id"] for t in targets], dtype=str),
            "domain_variable": np.array([t["domain_variable"] for t in targets], dtype=str),
            "value": np.array([t["value"] for t in targets], dtype=np.float64),
        },
        "targets": np.array([t["value"] for t in targets], dtype=np.float64),
        "target_names": names,
        "metadata": metadata,
        "initial_weights": w0,
        "cd_geoid": cd_geoid.astype(np.int64),
        "state_fips": state_fips.astype(np.int64),
        "block_geoid": None,
    }
    print(
        "Built matrix: %d targets x %d columns (%d records x %d clones), nnz=%d in %.2fs"
        % (len(targets), n_records * args.n_clones, n_records, args.n_clones, len(vals), time.perf_counter() - t0)
    )
    return package


def save_package(path, package):
    import pickle

    from policyengine_us_data.utils.io import atomic_path, write_json

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            pickle.dump(package, f, protocol=4)
    meta_path = os.path.join(os.path.dirname(os.path.abspath(path)), "calibration_package_meta.json")
    write_json(meta_path, package["metadata"])
    return meta_path


def load_package(path):
    import pickle

    require_file(path, "calibration package (--package-path)")
    try:
        with open(path, "rb") as f:
            package = pickle.load(f)
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
        raise UsageError("cannot load calibration package %s: %s" % (path, exc))
    if not isinstance(package, dict) or package.get("metadata", {}).get("package_format") != PACKAGE_FORMAT:
        raise UsageError("%s is not an example calibration package" % path)
    return package


# ----------------------------------------------------------------------------
# Fit
# ----------------------------------------------------------------------------


class Problem:
    def __init__(self, rows, cols, vals, targets, n_cols, beta, lambda_l0, lambda_l2, w0):
        import numpy as np

        self.np = np
        self.rows, self.cols, self.vals = rows.astype(np.int64), cols.astype(np.int64), vals
        self.t = targets
        self.abs_t = np.abs(targets)
        self.T = len(targets)
        self.N = n_cols
        self.beta, self.l0, self.l2 = beta, lambda_l0, lambda_l2
        self.w0 = w0
        self.l0_shift = beta * np.log(-GAMMA / ZETA)

    def gate(self, log_alpha):
        np = self.np
        s = 1.0 / (1.0 + np.exp(-log_alpha / self.beta))
        sbar = s * (ZETA - GAMMA) + GAMMA
        z = np.clip(sbar, 0.0, 1.0)
        dz = np.where((sbar > 0.0) & (sbar < 1.0), (ZETA - GAMMA) * s * (1.0 - s) / self.beta, 0.0)
        return z, dz

    def estimate(self, w):
        np = self.np
        return np.bincount(self.rows, weights=self.vals * w[self.cols], minlength=self.T)

    def weights(self, log_w, log_alpha):
        z, _ = self.gate(log_alpha)
        return self.np.exp(log_w) * z

    def loss_and_grads(self, log_w, log_alpha):
        np = self.np
        z, dz = self.gate(log_alpha)
        base = np.exp(log_w)
        w = base * z
        est = self.estimate(w)
        r = (est - self.t) / self.abs_t
        fit = float(np.mean(r * r))
        g_est = 2.0 * r / (self.abs_t * self.T)
        g_w = np.bincount(self.cols, weights=self.vals * g_est[self.rows], minlength=self.N)
        rel = w / self.w0
        l2 = self.l2 * float(np.mean(rel * rel))
        g_w += self.l2 * 2.0 * rel / (self.w0 * self.N)
        p_open = 1.0 / (1.0 + np.exp(-(log_alpha - self.l0_shift)))
        l0 = self.l0 * float(np.mean(p_open))
        g_logw = g_w * w
        g_la = g_w * base * dz + self.l0 * p_open * (1.0 - p_open) / self.N
        return fit + l2 + l0, g_logw, g_la

    def metrics(self, w):
        np = self.np
        est = self.estimate(w)
        r = (est - self.t) / self.abs_t
        return est, float(np.mean(r * r)), float(np.mean(np.abs(r)))


def signature(package_sha, national, n_cols, n_targets):
    return "%s|national=%d|cols=%d|targets=%d" % (package_sha, int(national), n_cols, n_targets)


def init_state(problem, seed):
    import numpy as np

    rng = np.random.default_rng([seed, 8])
    n = problem.N
    la0 = np.log(INIT_KEEP_PROB / (1 - INIT_KEEP_PROB))
    return {
        "log_w": np.log(problem.w0) + rng.normal(0.0, LOG_WEIGHT_JITTER_SD, n),
        "log_alpha": la0 + rng.normal(0.0, LOG_ALPHA_JITTER_SD, n),
        "m_w": np.zeros(n),
        "v_w": np.zeros(n),
        "m_a": np.zeros(n),
        "v_a": np.zeros(n),
        "epochs_completed": 0,
        "log_epoch": [],
        "log_loss": [],
        "log_mre": [],
    }


def save_checkpoint(path, state, sig, hparams):
    import numpy as np

    from policyengine_us_data.utils.h5io import write_npz

    write_npz(
        path,
        {
            "format": np.array(CHECKPOINT_FORMAT),
            "signature": np.array(sig),
            "hparams": np.array(hparams, dtype=np.float64),
            "epochs_completed": np.array(state["epochs_completed"], dtype=np.int64),
            "log_w": state["log_w"],
            "log_alpha": state["log_alpha"],
            "m_w": state["m_w"],
            "v_w": state["v_w"],
            "m_a": state["m_a"],
            "v_a": state["v_a"],
            "log_epoch": np.array(state["log_epoch"], dtype=np.int64),
            "log_loss": np.array(state["log_loss"], dtype=np.float64),
            "log_mre": np.array(state["log_mre"], dtype=np.float64),
        },
    )


def load_checkpoint(path, sig, hparams, n_cols):
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise UsageError("cannot read checkpoint %s: %s" % (path, exc))
    if str(d.get("format", "")) != CHECKPOINT_FORMAT:
        raise UsageError("%s is not an example fit checkpoint" % path)
    if str(d["signature"]) != sig:
        raise UsageError(
            "checkpoint %s was made for a different package/targets (%s != %s)" % (path, d["signature"], sig)
        )
    if not np.array_equal(d["hparams"], np.array(hparams, dtype=np.float64)):
        print("WARNING: checkpoint hyper-parameters differ from this run (%s vs %s)" % (list(d["hparams"]), hparams))
    if len(d["log_w"]) != n_cols:
        raise UsageError("checkpoint %s has %d columns, package has %d" % (path, len(d["log_w"]), n_cols))
    return {
        "log_w": d["log_w"],
        "log_alpha": d["log_alpha"],
        "m_w": d["m_w"],
        "v_w": d["v_w"],
        "m_a": d["m_a"],
        "v_a": d["v_a"],
        "epochs_completed": int(d["epochs_completed"]),
        "log_epoch": [int(x) for x in d["log_epoch"]],
        "log_loss": [float(x) for x in d["log_loss"]],
        "log_mre": [float(x) for x in d["log_mre"]],
    }


def run_fit(problem, state, epochs, lr, log_freq, on_checkpoint, sleep_ms):
    np = problem.np
    ckpt_every = log_freq or 100

    def log_now(epoch):
        w = problem.weights(state["log_w"], state["log_alpha"])
        _, loss, mre = problem.metrics(w)
        total, _, _ = problem.loss_and_grads(state["log_w"], state["log_alpha"])
        state["log_epoch"].append(epoch)
        state["log_loss"].append(total)
        state["log_mre"].append(mre)
        print("  epoch %5d  loss %.6g  mean_rel_error %.4f" % (epoch, total, mre), flush=True)

    if state["epochs_completed"] == 0 and not state["log_epoch"]:
        log_now(0)
    for epoch in range(state["epochs_completed"] + 1, epochs + 1):
        _, g_w, g_a = problem.loss_and_grads(state["log_w"], state["log_alpha"])
        b1t, b2t = 1.0 - ADAM_B1 ** epoch, 1.0 - ADAM_B2 ** epoch
        for p, g, m, v in (("log_w", g_w, "m_w", "v_w"), ("log_alpha", g_a, "m_a", "v_a")):
            state[m] = ADAM_B1 * state[m] + (1.0 - ADAM_B1) * g
            state[v] = ADAM_B2 * state[v] + (1.0 - ADAM_B2) * g * g
            state[p] = state[p] - lr * (state[m] / b1t) / (np.sqrt(state[v] / b2t) + ADAM_EPS)
        state["epochs_completed"] = epoch
        if sleep_ms:
            time.sleep(sleep_ms / 1000.0)
        if (log_freq and epoch % log_freq == 0) or epoch == epochs:
            log_now(epoch)
        if epoch % ckpt_every == 0 or epoch == epochs:
            on_checkpoint()


def fit_main(args, package, package_sha):
    import numpy as np

    from policyengine_us_data.calibration.target_config import keep_mask, load_target_config
    from policyengine_us_data.utils.h5io import write_npy, write_npz
    from policyengine_us_data.utils.io import (
        atomic_write_text,
        package_version,
        sha256_file,
        write_json,
    )

    t0 = time.perf_counter()
    meta = package["metadata"]
    X = package["X_sparse"]
    tdf = package["targets_df"]
    names = list(package["target_names"])
    n_targets_pkg, n_cols = X["shape"]
    keep = np.ones(n_targets_pkg, dtype=bool)
    config_sha = None
    if args.target_config:
        config = load_target_config(args.target_config)
        keep &= np.array(
            keep_mask(config, list(tdf["variable"]), list(tdf["geo_level"]), list(tdf["domain_variable"])),
            dtype=bool,
        )
        config_sha = sha256_file(args.target_config)
    if args.national:
        keep &= tdf["geo_level"] == "national"
    if not keep.any():
        raise UsageError("no targets left to fit (check --target-config / --national)")
    new_index = np.full(n_targets_pkg, -1, dtype=np.int64)
    new_index[keep] = np.arange(int(keep.sum()))
    sel = keep[X["row"]]
    rows = new_index[X["row"][sel]]
    cols = X["col"][sel]
    vals = X["data"][sel]
    targets = package["targets"][keep]
    names = [n for n, k in zip(names, keep) if k]
    w0 = package["initial_weights"]
    problem = Problem(rows, cols, vals, targets, n_cols, args.beta, args.lambda_l0, args.lambda_l2, w0)

    prefix = "national_" if args.national else ""
    out_dir = args.output_dir
    os.makedirs(out_dir, exist_ok=True)
    weights_path = args.output or os.path.join(out_dir, prefix + "calibration_weights.npy")
    geo_path = os.path.join(out_dir, prefix + "geography_assignment.npz")
    config_path = os.path.join(out_dir, prefix + "unified_run_config.json")
    diag_path = os.path.join(out_dir, prefix + "unified_diagnostics.csv")
    cal_log_path = os.path.join(out_dir, prefix + "calibration_log.csv")

    sig = signature(package_sha, args.national, n_cols, len(targets))
    hparams = [args.beta, args.lambda_l0, args.lambda_l2, args.learning_rate, args.seed]
    state = None
    if args.resume_from:
        if os.path.isfile(args.resume_from):
            state = load_checkpoint(args.resume_from, sig, hparams, n_cols)
            if state["epochs_completed"] > args.epochs:
                raise UsageError(
                    "checkpoint has %d epochs but --epochs is %d (epochs is the total)"
                    % (state["epochs_completed"], args.epochs)
                )
            print("Resuming from %s at epoch %d of %d" % (args.resume_from, state["epochs_completed"], args.epochs))
        else:
            print("No checkpoint at %s; starting fresh" % args.resume_from)
    if state is None:
        state = init_state(problem, args.seed)

    def on_checkpoint():
        if args.checkpoint_output:
            save_checkpoint(args.checkpoint_output, state, sig, hparams)

    initial_w = problem.weights(*(init_state(problem, args.seed)[k] for k in ("log_w", "log_alpha")))
    init_est, _, init_mre = problem.metrics(initial_w)
    sleep_ms = float(os.environ.get("EXAMPLE_FIT_SLEEP_MS", "0") or 0)
    print(
        "Fitting %d targets x %d columns (%s, epochs=%d, lr=%g, beta=%g, l0=%g, l2=%g)"
        % (len(targets), n_cols, "national" if args.national else "regional", args.epochs,
           args.learning_rate, args.beta, args.lambda_l0, args.lambda_l2)
    )
    run_fit(problem, state, args.epochs, args.learning_rate, args.log_freq, on_checkpoint, sleep_ms)
    if args.epochs == 0:
        on_checkpoint()

    weights = problem.weights(state["log_w"], state["log_alpha"])
    final_est, _, final_mre = problem.metrics(weights)
    write_npy(weights_path, weights.astype(np.float64))
    write_npz(
        geo_path,
        {
            "cd_geoid": package["cd_geoid"],
            "state_fips": package["state_fips"],
            "n_records": np.array(meta["n_records"], dtype=np.int64),
            "n_clones": np.array(meta["n_clones"], dtype=np.int64),
            "seed": np.array(meta["seed"], dtype=np.int64),
        },
    )
    lines = ["target_name,target_value,initial_estimate,final_estimate,rel_error"]
    for name, t, a, b in zip(names, targets, init_est, final_est):
        lines.append("%s,%r,%r,%r,%r" % (name, float(t), float(a), float(b), float((b - t) / abs(t))))
    atomic_write_text(diag_path, "\n".join(lines) + "\n")
    log_lines = ["epoch,loss,mean_rel_error"]
    for e, l, m in zip(state["log_epoch"], state["log_loss"], state["log_mre"]):
        log_lines.append("%d,%r,%r" % (e, l, m))
    atomic_write_text(cal_log_path, "\n".join(log_lines) + "\n")

    artifacts = {
        prefix + "calibration_weights.npy": "sha256:" + sha256_file(weights_path),
        prefix + "geography_assignment.npz": "sha256:" + sha256_file(geo_path),
    }
    if args.checkpoint_output and os.path.isfile(args.checkpoint_output):
        artifacts[prefix + "calibration_weights.checkpoint.npz"] = "sha256:" + sha256_file(args.checkpoint_output)
    run_config = {
        "artifacts": artifacts,
        "beta": args.beta,
        "dataset_sha256": meta["dataset_sha256"],
        "db_sha256": meta["db_sha256"],
        "device": args.device,
        "domain_variables": args.domain_variables,
        "epochs": args.epochs,
        "epochs_total": state["epochs_completed"],
        "hierarchical_domains": args.hierarchical_domains,
        "initial_mean_error_pct": round(100.0 * init_mre, 6),
        "lambda_l0": args.lambda_l0,
        "lambda_l2": args.lambda_l2,
        "learning_rate": args.learning_rate,
        "log_freq": args.log_freq,
        "mean_error_pct": round(100.0 * final_mre, 6),
        "n_clones": meta["n_clones"],
        "n_records": meta["n_records"],
        "n_targets": len(targets),
        "national": bool(args.national),
        "package_sha256": package_sha,
        "package_version": package_version(),
        "seed": args.seed,
        "skip_source_impute": args.skip_source_impute,
        "target_config_sha256": config_sha,
        "weight_format": "clone_level",
        "weight_nonzero": int(np.count_nonzero(weights)),
        "weight_sum": round(float(weights.sum()), 4),
    }
    write_json(config_path, run_config)
    print(
        "Fit done: mean relative error %.4f -> %.4f, %d/%d nonzero weights (%.2fs)"
        % (init_mre, final_mre, run_config["weight_nonzero"], n_cols, time.perf_counter() - t0)
    )
    print("OUTPUT_PATH:%s" % weights_path)
    print("GEOGRAPHY_PATH:%s" % geo_path)
    print("LOG_PATH:%s" % diag_path)
    print("CAL_LOG_PATH:%s" % cal_log_path)
    print("CONFIG_PATH:%s" % config_path)
    if args.checkpoint_output:
        print("CHECKPOINT_PATH:%s" % args.checkpoint_output)
    return 0


def main(argv=None):
    args = parse_args(argv)
    if args.device == "cuda":
        print("NOTE: the example fits on CPU with numpy; --device cuda is recorded only")
    from policyengine_us_data.utils.io import sha256_file

    if args.package_path:
        package = load_package(args.package_path)
        package_sha = sha256_file(args.package_path)
    else:
        package = build_package(args)
        if args.package_output:
            meta_path = save_package(args.package_output, package)
            print("PACKAGE_PATH:%s" % args.package_output)
            print("PACKAGE_META_PATH:%s" % meta_path)
            package_sha = sha256_file(args.package_output)
        else:
            import hashlib
            import pickle

            package_sha = hashlib.sha256(pickle.dumps(package, protocol=4)).hexdigest()
        if args.build_only:
            return 0
    return fit_main(args, package, package_sha)


if __name__ == "__main__":
    run_main(main)
