"""Mirrors `policyengine_us_data.calibration.unified_calibration` (unified L0
calibration): clone the stratified CPS N times, assign every clone a
congressional district, build the sparse target-by-column matrix from
`policy_data.db`, then fit L0-gated clone-level weights.

The command line is the real one (the same parser flags, defaults and
checks), and so are the outputs, their locations and the stdout markers.

Build the package (the real Modal wrapper's command, RCR:383-403):

    python -m policyengine_us_data.calibration.unified_calibration --device cpu \
        --epochs 0 --db-path DB --dataset DS --build-only --package-output PKG \
        [--workers W] --n-clones N

  writes PKG (a pickle) and prints only `validate_package`'s report on stdout.
  The `calibration_package_meta.json` sidecar is not written here (the real
  Modal wrapper writes it).

Fit from a package (the real pipeline's fits, PL:853-889):

    python -m policyengine_us_data.calibration.unified_calibration --device cuda \
        --epochs E --package-path PKG \
        --target-config policyengine_us_data/calibration/target_config.yaml \
        --beta 0.65 --lambda-l0 1e-7 --lambda-l2 1e-8 --log-freq 100 \
        [--n-clones N] [--output DIR/calibration_weights.npy] \
        [--resume-from CKPT] [--checkpoint-output CKPT]

  writes, beside --output and unprefixed: the weights, `geography_assignment.npz`
  (with `n_clones = --n-clones`, default 430, as the real one),
  `stacked_blocks.npy`, `geo_labels.json`, `unified_run_config.json`,
  `unified_diagnostics.csv` and (with --log-freq) `calibration_log.csv`, and
  announces them as OUTPUT_PATH:, CHECKPOINT_PATH:, GEOGRAPHY_PATH:,
  BLOCKS_PATH:, GEO_LABELS_PATH:, CONFIG_PATH:, LOG_PATH:, CAL_LOG_PATH:.
  With --resume-from, **--epochs counts additional epochs** (as the real code);
  the epoch log beside --output is appended when it exists.

Differences from the real module, on purpose:
- plain numpy (Adam on log-weights and hard-concrete gate logits with the
  deterministic gate; no torch) so a run is bit-for-bit reproducible. The
  checkpoint (whatever its name, `.checkpoint.pt` by default) is an `.npz`
  archive holding the optimiser state too, so a killed and resumed fit equals
  an uninterrupted one; `load_fit_checkpoint` reads it as the real one reads a
  torch checkpoint;
- the L0 and L2 penalties are means over columns (L2 on w / w_initial), so
  the real hyper-parameters give sensible strengths at this tiny scale;
- nothing time-, host- or location-dependent is written into any output: a
  path is recorded relative to the project directory when inside it, else as
  its file name; `created_at` and `elapsed_seconds` are fixed; the git fields
  come from GIT_COMMIT / GIT_BRANCH only (the real code's fallback);
- `--county-level`, `--workers`, `--domain-variables`, `--hierarchical-domains`,
  the chunked-matrix flags and `--skip-source-impute` are accepted and
  recorded but do not change the method;
- EXAMPLE_FIT_SLEEP_MS=n sleeps n ms per epoch, so tests can kill a fit mid-run;
  EXAMPLE_FIT_FAIL_AT_EPOCH=n (with --log-freq) exits 1 right after the
  checkpoint of the chunk that reaches epoch n, unless the fit started at or
  past n: a preempted fit whose rerun, with the same environment, resumes.
"""

import argparse
import json
import os
import sys
import time

from policyengine_us_data.calibration.calibration_utils import STATE_DEPENDENT
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
DEFAULT_EPOCHS = 100
DEFAULT_N_CLONES = 430
ADAM_B1, ADAM_B2, ADAM_EPS = 0.9, 0.999, 1e-8
HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT_ROOT = os.path.dirname(os.path.dirname(HERE))
STORAGE_FOLDER = os.path.join(os.path.dirname(HERE), "storage")
DEFAULT_TARGET_CONFIG_PATH = os.path.join(HERE, "target_config.yaml")
#: The example writes no wall-clock time into its outputs (the real fields hold the time of the run).
FIXED_CREATED_AT = "1970-01-01T00:00:00"
CHECKPOINT_FORMAT_VERSION = 1


def get_git_provenance():
    """The real function runs git in the cwd and falls back to GIT_COMMIT / GIT_BRANCH;
    the example takes the fallback only, so its outputs never depend on where it runs."""
    from policyengine_us_data.utils.io import package_version

    return {
        "git_commit": os.environ.get("GIT_COMMIT") or None,
        "git_branch": os.environ.get("GIT_BRANCH") or None,
        "git_dirty": None,
        "package_version": package_version(),
    }


def recorded_path(path):
    """A path as the example records it: project-relative inside the project, else its file name."""
    if path is None:
        return None
    absolute = os.path.abspath(path)
    if os.path.commonpath([absolute, PROJECT_ROOT]) == PROJECT_ROOT:
        return os.path.relpath(absolute, PROJECT_ROOT)
    return os.path.basename(absolute)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Unified L0 calibration pipeline")
    p.add_argument("--dataset", default=None, help="Path to CPS h5 file")
    p.add_argument("--db-path", default=None, help="Path to policy_data.db")
    p.add_argument("--output", default=None, help="Path to save weights (.npy)")
    p.add_argument("--n-clones", type=int, default=DEFAULT_N_CLONES, help="Number of clones (default: %d)" % DEFAULT_N_CLONES)
    p.add_argument("--preset", choices=list(PRESETS.keys()), default=None, help="L0 preset: local or national")
    p.add_argument("--lambda-l0", type=float, default=None, help="Custom L0 penalty (overrides preset)")
    p.add_argument(
        "--epochs", type=int, default=DEFAULT_EPOCHS,
        help="Training epochs (default: %d). When --resume-from is set, this is the number of ADDITIONAL epochs "
        "to run beyond the checkpoint, not a new total." % DEFAULT_EPOCHS,
    )
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="Device for training")
    p.add_argument("--seed", type=int, default=42, help="Random seed for geography assignment")
    p.add_argument("--domain-variables", type=str, default=None)
    p.add_argument("--hierarchical-domains", type=str, default=None)
    p.add_argument("--skip-takeup-rerandomize", action="store_true")
    p.add_argument("--skip-source-impute", action="store_true", default=True)
    p.add_argument("--no-skip-source-impute", dest="skip_source_impute", action="store_false")
    p.add_argument("--target-config", default=None, help="Path to target include/exclude YAML config")
    p.add_argument("--all-active-targets", action="store_true")
    p.add_argument("--county-level", action="store_true")
    p.add_argument("--build-only", action="store_true", help="Build matrix + save package, skip fitting")
    p.add_argument("--chunked-matrix", action="store_true")
    p.add_argument("--chunk-size", type=int, default=25_000)
    p.add_argument("--chunk-dir", default=None)
    p.add_argument("--keep-chunks", action="store_true")
    p.add_argument("--resume-chunks", action="store_true")
    p.add_argument("--package-path", default=None, help="Load pre-built calibration package (skip matrix build)")
    p.add_argument("--package-output", default=None, help="Where to save calibration package")
    p.add_argument("--beta", type=float, default=BETA)
    p.add_argument("--lambda-l2", type=float, default=LAMBDA_L2)
    p.add_argument("--learning-rate", type=float, default=LEARNING_RATE)
    p.add_argument("--log-freq", type=int, default=None, help="Epochs between per-target CSV log entries")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--resume-from", default=None, help="Resume from a .checkpoint.pt (or warm-start from a .npy)")
    p.add_argument("--checkpoint-output", default=None, help="Where to save resumable fit checkpoints (default: <output>.checkpoint.pt)")
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
    return args


def load_target_config(path):
    """The include/exclude rules of a target config YAML (`exclude` defaults to [])."""
    from policyengine_us_data.calibration.target_config import load_target_config as load

    config = load(path)
    config.setdefault("exclude", [])
    return config


def _match_rules(targets, rules):
    """For each target (a dict with variable, geo_level, domain_variable): does any rule match?"""
    def hit(rule, t):
        return (
            rule["variable"] == t["variable"]
            and ("geo_level" not in rule or rule["geo_level"] == t["geo_level"])
            and ("domain_variable" not in rule or rule["domain_variable"] == (t["domain_variable"] or ""))
        )

    return [any(hit(rule, t) for rule in rules) for t in targets]


def apply_target_config(targets, config):
    """Boolean keep-list: `include` first (when present), then `exclude` removes from it."""
    include, exclude = config.get("include", []), config.get("exclude", [])
    keep = _match_rules(targets, include) if include else [True] * len(targets)
    if exclude:
        keep = [k and not x for k, x in zip(keep, _match_rules(targets, exclude))]
    return keep


def _sha256(path):
    from policyengine_us_data.utils.io import sha256_file

    return sha256_file(path)


# ----------------------------------------------------------------------------
# Package
# ----------------------------------------------------------------------------


def build_package(dataset_path, db_path, n_clones, seed, target_config, target_config_path):
    """The calibration package: the target matrix over cloned households, its targets and metadata."""
    import numpy as np

    from policyengine_us_data.calibration.calibration_utils import Features, load_db_targets, target_name
    from policyengine_us_data.calibration.publish_local_area import synthetic_blocks
    from policyengine_us_data.utils.h5io import read_dataset

    t0 = time.perf_counter()
    data, entities, period = read_dataset(dataset_path)
    for need in ("household_id", "person_household_id", "household_weight"):
        if need not in data:
            raise UsageError("%s lacks %s" % (dataset_path, need))
    targets, district_pops = load_db_targets(db_path, period)
    if target_config:
        targets = [t for t, k in zip(targets, apply_target_config(targets, target_config)) if k]
        if not targets:
            raise UsageError("target config %s keeps no targets" % target_config_path)
    n_records = len(data["household_id"])
    cd_geoid, state_fips = assign_geography(district_pops, n_records, n_clones, seed)
    features = Features(data, entities)
    rows, cols, vals = build_matrix(targets, features, cd_geoid, state_fips, n_records)
    w0 = initial_weights(
        targets, rows, cols, vals, features, cd_geoid, data["household_weight"].astype(np.float64), n_records, n_clones,
    )
    metadata = {
        "dataset_path": recorded_path(dataset_path),
        "db_path": recorded_path(db_path),
        "n_clones": n_clones,
        "n_records": n_records * n_clones,
        "base_n_records": n_records,
        "seed": seed,
        "created_at": FIXED_CREATED_AT,
        "target_config_path": recorded_path(target_config_path),
        "package_scope": "minimal" if target_config else "all_active_targets",
        "matrix_builder": "precompute",
        "chunk_size": None,
        "chunk_dir": None,
    }
    metadata.update(get_git_provenance())
    metadata["dataset_sha256"] = _sha256(dataset_path)
    metadata["db_sha256"] = _sha256(db_path)
    if target_config_path:
        metadata["target_config_sha256"] = _sha256(target_config_path)
    package = {
        "X_sparse": {"format": "coo", "shape": (len(targets), n_records * n_clones), "row": rows, "col": cols, "data": vals},
        "targets_df": {
            "target_id": np.array([t["target_id"] for t in targets], dtype=np.int64),
            "stratum_id": np.array([t["stratum_id"] for t in targets], dtype=np.int64),
            "variable": np.array([t["variable"] for t in targets], dtype=str),
            "geo_level": np.array([t["geo_level"] for t in targets], dtype=str),
            "geographic_id": np.array([t["geographic_id"] for t in targets], dtype=str),
            "domain_variable": np.array([t["domain_variable"] for t in targets], dtype=str),
            "value": np.array([t["value"] for t in targets], dtype=np.float64),
        },
        "target_names": [target_name(t) for t in targets],
        "metadata": metadata,
        "initial_weights": w0,
        "cd_geoid": np.array([str(c) for c in cd_geoid], dtype=str),
        "block_geoid": synthetic_blocks(cd_geoid),
    }
    print(
        "Built matrix: %d targets x %d columns (%d records x %d clones), nnz=%d in %.2fs"
        % (len(targets), n_records * n_clones, n_records, n_clones, len(vals), time.perf_counter() - t0),
        file=sys.stderr,
    )
    return package


def save_calibration_package(path, package):
    import pickle

    from policyengine_us_data.utils.io import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            pickle.dump(package, f, protocol=4)
    print("Calibration package saved to %s" % path, file=sys.stderr)


def load_calibration_package(path):
    import pickle

    require_file(path, "calibration package (--package-path)")
    try:
        with open(path, "rb") as f:
            package = pickle.load(f)
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
        raise UsageError("cannot load calibration package %s: %s" % (path, exc))
    if not isinstance(package, dict) or not isinstance(package.get("X_sparse"), dict) or package["X_sparse"].get("format") != "coo":
        raise UsageError("%s is not an example calibration package" % path)
    return package



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


# ----------------------------------------------------------------------------
# Checkpoints (the real ones are torch files; the example's are .npz archives)
# ----------------------------------------------------------------------------


def build_checkpoint_signature(rows, cols, vals, targets, target_names, lambda_l0, beta, lambda_l2, learning_rate):
    """What a checkpoint must match (structure: fatal) or should match (hyper-parameters: a warning)."""
    import hashlib

    import numpy as np

    def digest(*arrays):
        h = hashlib.sha256()
        for a in arrays:
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()

    return {
        "x_sha256": digest(rows, cols, vals),
        "targets_sha256": digest(np.asarray(targets, dtype=np.float64)),
        "target_names_sha256": hashlib.sha256("\n".join(target_names).encode()).hexdigest(),
        "lambda_l0": float(lambda_l0),
        "beta": float(beta),
        "lambda_l2": float(lambda_l2),
        "learning_rate": float(learning_rate),
    }


def checkpoint_signature_mismatches(stored, current):
    fatal = ["%s differs" % k for k in ("x_sha256", "targets_sha256", "target_names_sha256") if stored.get(k) != current[k]]
    soft = ["%s %s -> %s" % (k, stored.get(k), current[k]) for k in ("lambda_l0", "beta", "lambda_l2", "learning_rate") if stored.get(k) != current[k]]
    return fatal, soft


def save_fit_checkpoint(path, state, epochs_completed, signature):
    import numpy as np

    from policyengine_us_data.utils.h5io import write_npz

    arrays = {"model_state_dict/%s" % k: state[k] for k in ("log_w", "log_alpha", "m_w", "v_w", "m_a", "v_a")}
    arrays["format_version"] = np.array(CHECKPOINT_FORMAT_VERSION, dtype=np.int64)
    arrays["epochs_completed"] = np.array(int(epochs_completed), dtype=np.int64)
    arrays["signature"] = np.array(json.dumps(signature, sort_keys=True))
    write_npz(path, arrays)
    print("Calibration checkpoint saved to %s (epoch %d)" % (path, epochs_completed), file=sys.stderr)


def load_fit_checkpoint(path, device="cpu"):
    """A saved fit checkpoint as the real one returns it: {format_version, epochs_completed,
    signature, model_state_dict}. FileNotFoundError when absent, ValueError when not a checkpoint."""
    import numpy as np

    if not os.path.exists(path):
        raise FileNotFoundError("Checkpoint not found: %s" % path)
    try:
        with np.load(path, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise ValueError("Invalid checkpoint file: %s (%s)" % (path, exc))
    state = {k[len("model_state_dict/"):]: v for k, v in d.items() if k.startswith("model_state_dict/")}
    if not state or "epochs_completed" not in d:
        raise ValueError("Invalid checkpoint file: %s" % path)
    return {
        "format_version": int(d["format_version"]),
        "epochs_completed": int(d["epochs_completed"]),
        "signature": json.loads(str(d["signature"])),
        "model_state_dict": state,
    }


def resolve_resume_artifact(resume_from):
    """A .npy weights path prefers its sibling checkpoint (as the real code)."""
    if not os.path.exists(resume_from):
        raise UsageError("Resume artifact not found: %s" % resume_from)
    if resume_from.endswith(".npy"):
        sibling = resume_from[: -len(".npy")] + ".checkpoint.pt"
        if os.path.exists(sibling):
            return "checkpoint", sibling
        return "weights", resume_from
    return "checkpoint", resume_from


# ----------------------------------------------------------------------------
# Fit
# ----------------------------------------------------------------------------


def init_state(problem, seed, initial_weights):
    import numpy as np

    rng = np.random.default_rng([seed, 8])
    n = problem.N
    la0 = np.log(INIT_KEEP_PROB / (1 - INIT_KEEP_PROB))
    return {
        "log_w": np.log(initial_weights) + rng.normal(0.0, LOG_WEIGHT_JITTER_SD, n),
        "log_alpha": la0 + rng.normal(0.0, LOG_ALPHA_JITTER_SD, n),
        "m_w": np.zeros(n),
        "v_w": np.zeros(n),
        "m_a": np.zeros(n),
        "v_a": np.zeros(n),
    }


def _adam_epochs(problem, state, first_epoch, count, lr, sleep_ms):
    """Epochs first_epoch+1 .. first_epoch+count (bias correction by absolute epoch)."""
    np = problem.np
    for epoch in range(first_epoch + 1, first_epoch + count + 1):
        _, g_w, g_a = problem.loss_and_grads(state["log_w"], state["log_alpha"])
        b1t, b2t = 1.0 - ADAM_B1 ** epoch, 1.0 - ADAM_B2 ** epoch
        for p, g, m, v in (("log_w", g_w, "m_w", "v_w"), ("log_alpha", g_a, "m_a", "v_a")):
            state[m] = ADAM_B1 * state[m] + (1.0 - ADAM_B1) * g
            state[v] = ADAM_B2 * state[v] + (1.0 - ADAM_B2) * g * g
            state[p] = state[p] - lr * (state[m] / b1t) / (np.sqrt(state[v] / b2t) + ADAM_EPS)
        if sleep_ms:
            time.sleep(sleep_ms / 1000.0)


def fit_l0_weights(problem, target_names, achievable, epochs, seed, initial_weights, learning_rate, log_freq, log_path, resume_from, checkpoint_path):
    """The real fit loop: resume from a checkpoint's epochs_completed, run ``epochs`` more
    (in chunks of ``log_freq`` with a checkpoint and a log row set after each), return the weights."""
    import numpy as np

    signature = build_checkpoint_signature(
        problem.rows, problem.cols, problem.vals, problem.t, target_names,
        problem.l0, problem.beta, problem.l2, learning_rate,
    )
    state = init_state(problem, seed, initial_weights)
    start_epoch = 0
    if resume_from is not None:
        kind, path = resolve_resume_artifact(resume_from)
        if kind == "weights":
            w = np.load(path, allow_pickle=False)
            if w.shape != (problem.N,):
                raise UsageError("Resume weights at %s must have shape (%d,), got %s" % (path, problem.N, w.shape))
            state = init_state(problem, seed, np.maximum(w, 1e-12))
            print("Warm-starting calibration from saved weights at %s" % path, file=sys.stderr)
        else:
            try:
                checkpoint = load_fit_checkpoint(path)
            except ValueError as exc:
                raise UsageError(str(exc))
            fatal, soft = checkpoint_signature_mismatches(checkpoint["signature"], signature)
            if fatal:
                raise UsageError("Checkpoint is structurally incompatible with the requested run: " + "; ".join(fatal))
            if soft:
                print("WARNING: Resuming with hyperparameter change(s): %s" % "; ".join(soft), file=sys.stderr)
            if len(checkpoint["model_state_dict"]["log_w"]) != problem.N:
                raise UsageError("checkpoint %s has %d columns, the package has %d" % (path, len(checkpoint["model_state_dict"]["log_w"]), problem.N))
            state = {k: np.asarray(v) for k, v in checkpoint["model_state_dict"].items()}
            start_epoch = checkpoint["epochs_completed"]
            print("Resuming calibration from checkpoint %s at epoch %d" % (path, start_epoch), file=sys.stderr)
    print(
        "L0 calibration: %d targets, %d features, lambda_l0=%.1e, beta=%.2f, lambda_l2=%.1e, lr=%.3f, epochs=%d"
        % (problem.T, problem.N, problem.l0, problem.beta, problem.l2, learning_rate, epochs),
        file=sys.stderr,
    )
    if start_epoch > 0:
        print("Continuing for %d additional epochs (total after run: %d)" % (epochs, start_epoch + epochs), file=sys.stderr)
    sleep_ms = float(os.environ.get("EXAMPLE_FIT_SLEEP_MS", "0") or 0)
    fail_at = int(os.environ["EXAMPLE_FIT_FAIL_AT_EPOCH"]) if os.environ.get("EXAMPLE_FIT_FAIL_AT_EPOCH") else None

    logging = log_freq is not None and log_path is not None
    if logging:
        os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
        if start_epoch > 0 and os.path.exists(log_path):
            print("Appending epoch log to %s from epoch %d" % (log_path, start_epoch), file=sys.stderr)
        else:
            with open(log_path, "w") as f:
                f.write("target_name,estimate,target,epoch,error,rel_error,abs_error,rel_abs_error,loss,achievable\n")
        done = 0
        while done < epochs:
            chunk = min(log_freq, epochs - done)
            _adam_epochs(problem, state, start_epoch + done, chunk, learning_rate, sleep_ms)
            done += chunk
            absolute_epoch = start_epoch + done
            weights = problem.weights(state["log_w"], state["log_alpha"])
            y_pred = problem.estimate(weights)
            if checkpoint_path is not None:
                save_fit_checkpoint(checkpoint_path, state, absolute_epoch, signature)
            rel = (y_pred - problem.t) / problem.abs_t
            nz = int(np.count_nonzero(weights))
            print(
                "Epoch %4d: mean_error=%.4f%%, max_error=%.1f%%, total_loss=%.3f, active=%d/%d (%.1f%% sparse)"
                % (absolute_epoch, 100 * np.mean(np.abs(rel)), 100 * np.max(np.abs(rel)), np.sum(rel ** 2), nz, problem.N,
                   (1 - nz / problem.N) * 100),
                flush=True,
            )
            with open(log_path, "a") as f:
                for i in range(problem.T):
                    est, tgt = float(y_pred[i]), float(problem.t[i])
                    err = est - tgt
                    rel_err = err / tgt if tgt != 0 else 0
                    f.write(
                        '"%s",%r,%r,%d,%r,%r,%r,%r,%r,%s\n'
                        % (target_names[i], est, tgt, absolute_epoch, err, rel_err, abs(err), abs(rel_err), rel_err ** 2, bool(achievable[i]))
                    )
            if fail_at is not None and start_epoch < fail_at <= absolute_epoch:
                print("EXAMPLE_FIT_FAIL_AT_EPOCH: stopping after the checkpoint of epoch %d" % absolute_epoch, file=sys.stderr)
                sys.exit(1)
    else:
        _adam_epochs(problem, state, start_epoch, epochs, learning_rate, sleep_ms)
        if checkpoint_path is not None:
            save_fit_checkpoint(checkpoint_path, state, start_epoch + epochs, signature)
    return problem.weights(state["log_w"], state["log_alpha"])


def fit_from_package(args, package, target_config, output_path, cal_log_path, checkpoint_output_path, lambda_l0):
    """Applies the target config to the package, fits, and returns what the outputs need."""
    import numpy as np

    X = package["X_sparse"]
    tdf = package["targets_df"]
    n_targets_pkg, n_cols = X["shape"]
    if target_config:
        rows_as_targets = [
            {"variable": v, "geo_level": g, "domain_variable": d}
            for v, g, d in zip(tdf["variable"], tdf["geo_level"], tdf["domain_variable"])
        ]
        keep = np.array(apply_target_config(rows_as_targets, target_config), dtype=bool)
    else:
        keep = np.ones(n_targets_pkg, dtype=bool)
    if not keep.any():
        raise UsageError("no targets left to fit (check --target-config)")
    new_index = np.full(n_targets_pkg, -1, dtype=np.int64)
    new_index[keep] = np.arange(int(keep.sum()))
    sel = keep[X["row"]]
    rows = new_index[X["row"][sel]]
    cols = X["col"][sel]
    vals = X["data"][sel]
    targets = tdf["value"][keep]
    names = [n for n, k in zip(package["target_names"], keep) if k]
    problem = Problem(rows, cols, vals, targets, n_cols, args.beta, lambda_l0, args.lambda_l2, package["initial_weights"])
    achievable = np.bincount(rows, weights=np.abs(vals), minlength=len(targets)) > 0
    weights = fit_l0_weights(
        problem, names, achievable, args.epochs, args.seed, package["initial_weights"], args.learning_rate,
        args.log_freq, cal_log_path, args.resume_from, checkpoint_output_path,
    )
    return problem, names, achievable, weights


def write_diagnostics(path, names, targets, estimates, achievable):
    """unified_diagnostics.csv: target,true_value,estimate,rel_error,abs_rel_error,achievable (as pandas writes it)."""
    import csv
    import io

    from policyengine_us_data.utils.io import atomic_write_text

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["target", "true_value", "estimate", "rel_error", "abs_rel_error", "achievable"])
    errors = []
    for name, t, e, a in zip(names, targets, estimates, achievable):
        rel = (float(e) - float(t)) / abs(float(t)) if t != 0 else 0.0
        w.writerow([name, repr(float(t)), repr(float(e)), repr(rel), repr(abs(rel)), bool(a)])
        if a:
            errors.append(abs(rel) * 100)
    atomic_write_text(path, buf.getvalue())
    return sum(errors) / len(errors) if errors else 0.0


def main(argv=None):
    args = parse_args(argv)
    print("CLI args: %s" % vars(args), file=sys.stderr)
    if args.device == "cuda":
        print("NOTE: the example fits on CPU with numpy; --device cuda is recorded only", file=sys.stderr)

    dataset_path = args.dataset or os.path.join(STORAGE_FOLDER, "source_imputed_stratified_extended_cps_2024.h5")
    if not args.package_path and not os.path.exists(dataset_path):
        raise UsageError("Dataset not found: %s; run 'make data' first, or pass --dataset with a valid path" % dataset_path)
    db_path = args.db_path or os.path.join(STORAGE_FOLDER, "calibration", "policy_data.db")
    output_path = args.output or os.path.join(STORAGE_FOLDER, "calibration", "calibration_weights.npy")
    if args.lambda_l0 is not None:
        lambda_l0 = args.lambda_l0
    elif args.preset is not None:
        lambda_l0 = PRESETS[args.preset]
    else:
        lambda_l0 = PRESETS["local"]
    if args.build_only and args.resume_from:
        raise UsageError("--resume-from cannot be used with --build-only")
    if args.all_active_targets and args.target_config:
        raise UsageError("--all-active-targets cannot be used with --target-config")
    target_config = target_config_path = None
    if not args.all_active_targets:
        target_config_path = args.target_config or DEFAULT_TARGET_CONFIG_PATH
        target_config = load_target_config(target_config_path)
    package_output_path = args.package_output
    if args.build_only and not package_output_path:
        package_output_path = os.path.join(STORAGE_FOLDER, "calibration", "calibration_package.pkl")
    output_dir = os.path.dirname(os.path.abspath(output_path))
    cal_log_path = os.path.join(output_dir, "calibration_log.csv") if args.log_freq is not None else None
    checkpoint_output_path = None
    if not args.build_only:
        checkpoint_output_path = args.checkpoint_output or os.path.splitext(output_path)[0] + ".checkpoint.pt"
    t_start = time.time()

    if args.package_path:
        package = load_calibration_package(args.package_path)
    else:
        require_file(db_path, "database (--db-path)")
        package = build_package(dataset_path, db_path, args.n_clones, args.seed, target_config, target_config_path)
        if package_output_path:
            save_calibration_package(package_output_path, package)
        if args.build_only:
            from policyengine_us_data.calibration.validate_package import format_report, validate_package

            print(format_report(validate_package(package)))
            print("Build-only complete. Package saved.", file=sys.stderr)
            return 0

    problem, names, achievable, weights = fit_from_package(
        args, package, target_config, output_path, cal_log_path, checkpoint_output_path, lambda_l0,
    )
    import numpy as np

    from policyengine_us_data.calibration.calibration_utils import save_geo_labels
    from policyengine_us_data.calibration.publish_local_area import GeographyAssignment, save_geography
    from policyengine_us_data.utils.h5io import write_npy
    from policyengine_us_data.utils.io import atomic_write_text

    os.makedirs(output_dir, exist_ok=True)
    diag_path = os.path.join(output_dir, "unified_diagnostics.csv")
    mean_error_pct = write_diagnostics(diag_path, names, problem.t, problem.estimate(weights), achievable)
    write_npy(output_path, weights.astype(np.float64))
    print("OUTPUT_PATH:%s" % output_path)
    if checkpoint_output_path and os.path.exists(checkpoint_output_path):
        print("CHECKPOINT_PATH:%s" % checkpoint_output_path)

    blocks = np.asarray(package["block_geoid"], dtype=str)
    geography_path = os.path.join(output_dir, "geography_assignment.npz")
    save_geography(
        GeographyAssignment(
            block_geoid=blocks,
            cd_geoid=np.asarray(package["cd_geoid"], dtype=str),
            county_fips=np.array([b[:5] for b in blocks], dtype="U5"),
            state_fips=np.array([int(b[:2]) for b in blocks], dtype=np.int32),
            n_records=int(package["metadata"]["base_n_records"]),
            n_clones=args.n_clones,
        ),
        geography_path,
    )
    print("GEOGRAPHY_PATH:%s" % geography_path)
    blocks_path = os.path.join(output_dir, "stacked_blocks.npy")
    write_npy(blocks_path, blocks)
    print("BLOCKS_PATH:%s" % blocks_path)
    geo_labels_path = os.path.join(output_dir, "geo_labels.json")
    save_geo_labels(sorted(set(str(c) for c in package["cd_geoid"])), geo_labels_path)
    print("GEO_LABELS_PATH:%s" % geo_labels_path)

    epochs_total = args.epochs
    if checkpoint_output_path and os.path.exists(checkpoint_output_path):
        epochs_total = load_fit_checkpoint(checkpoint_output_path)["epochs_completed"]
    run_config = {
        "dataset": recorded_path(dataset_path),
        "db_path": recorded_path(db_path),
        "skip_source_impute": args.skip_source_impute,
        "n_clones": args.n_clones,
        "lambda_l0": lambda_l0,
        "beta": args.beta,
        "lambda_l2": args.lambda_l2,
        "learning_rate": args.learning_rate,
        "epochs": args.epochs,
        "epochs_total": epochs_total,
        "device": args.device,
        "seed": args.seed,
        "resume_from": recorded_path(args.resume_from),
        "checkpoint_output": recorded_path(checkpoint_output_path),
        "domain_variables": [x.strip() for x in args.domain_variables.split(",")] if args.domain_variables else None,
        "hierarchical_domains": [x.strip() for x in args.hierarchical_domains.split(",")] if args.hierarchical_domains else None,
        "target_config": args.target_config,
        "n_targets": len(names),
        "n_records": int(problem.N),
        "weight_format": "clone_level",
        "weight_sum": float(weights.sum()),
        "weight_nonzero": int((weights > 0).sum()),
        "mean_error_pct": float(mean_error_pct),
        "elapsed_seconds": 0.0,
        "artifacts": {
            "calibration_weights.npy": "sha256:" + _sha256(output_path),
            "geography_assignment.npz": "sha256:" + _sha256(geography_path),
        },
    }
    if checkpoint_output_path and os.path.exists(checkpoint_output_path):
        run_config["artifacts"]["calibration_weights.checkpoint.pt"] = "sha256:" + _sha256(checkpoint_output_path)
    run_config.update(get_git_provenance())
    config_path = os.path.join(output_dir, "unified_run_config.json")
    atomic_write_text(config_path, json.dumps(run_config, indent=2))
    print(
        "Fit done: %d targets, mean error %.2f%%, %d/%d nonzero weights (%.2fs)"
        % (len(names), mean_error_pct, run_config["weight_nonzero"], problem.N, time.time() - t_start),
        file=sys.stderr,
    )
    print("CONFIG_PATH:%s" % config_path)
    print("LOG_PATH:%s" % diag_path)
    if cal_log_path:
        print("CAL_LOG_PATH:%s" % cal_log_path)
    return 0


if __name__ == "__main__":
    run_main(main)
