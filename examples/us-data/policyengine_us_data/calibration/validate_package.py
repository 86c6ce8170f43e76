"""Mirrors `policyengine_us_data.calibration.validate_package`: achievability
of a calibration package's targets and the report that `unified_calibration
--build-only` prints on stdout (the same sections and the closing
`RESULT: PASS` / `RESULT: FAIL (k impossible targets)` line).

    python -m policyengine_us_data.calibration.validate_package [PATH] [--n-hardest 10] [--strict [RATIO]]

Exit status: 0; 1 when impossible targets exist or the package is missing; 2 on strict failures.
"""

import argparse
import os
import sys


class ValidationResult:
    def __init__(self, **fields):
        self.__dict__.update(fields)


def validate_package(package, n_hardest=10, strict_ratio=None):
    import numpy as np

    X = package["X_sparse"]
    tdf = package["targets_df"]
    names = package["target_names"]
    n_targets, n_columns = X["shape"]
    nnz = len(X["data"])
    density = nnz / (n_targets * n_columns) if n_targets * n_columns else 0
    row_sums = np.bincount(np.asarray(X["row"], dtype=np.int64), weights=X["data"], minlength=n_targets)
    achievable = row_sums > 0
    values = tdf["value"]
    groups = sorted({(str(d), str(v), str(g)) for d, v, g in zip(tdf["domain_variable"], tdf["variable"], tdf["geo_level"])})

    impossible = [i for i in range(n_targets) if not achievable[i]]
    by_group = {}
    for i in impossible:
        key = (str(tdf["domain_variable"][i]), str(tdf["variable"][i]), str(tdf["geo_level"][i]))
        by_group[key] = by_group.get(key, 0) + 1
    ok_idx = [i for i in range(n_targets) if achievable[i]]
    ratios = {i: (row_sums[i] / values[i] if values[i] != 0 else float("inf")) for i in ok_idx}
    hardest = sorted(ok_idx, key=lambda i: (ratios[i], i))[:n_hardest]
    summary = []
    for g in groups:
        members = [i for i in range(n_targets) if (str(tdf["domain_variable"][i]), str(tdf["variable"][i]), str(tdf["geo_level"][i])) == g]
        ok = sum(1 for i in members if achievable[i])
        summary.append({"domain_variable": g[0], "variable": g[1], "geo_level": g[2], "total": len(members), "ok": ok, "impossible": len(members) - ok})
    strict_failures = sum(1 for i in ok_idx if ratios[i] < strict_ratio) if strict_ratio is not None else 0
    return ValidationResult(
        n_targets=n_targets,
        n_columns=n_columns,
        nnz=nnz,
        density=density,
        metadata=package.get("metadata", {}),
        n_achievable=len(ok_idx),
        n_impossible=len(impossible),
        impossible_targets=[{"target_name": names[i], "target_value": float(values[i])} for i in impossible],
        impossible_by_group=[{"domain_variable": d, "variable": v, "geo_level": g, "count": c} for (d, v, g), c in sorted(by_group.items(), key=lambda kv: -kv[1])],
        hardest_targets=[{"target_name": names[i], "ratio": float(ratios[i]), "row_sum": float(row_sums[i]), "target_value": float(values[i])} for i in hardest],
        group_summary=summary,
        strict_ratio=strict_ratio,
        strict_failures=strict_failures,
    )


def format_report(result, package_path=None):
    lines = ["", "=== Calibration Package Validation ===", ""]
    if package_path:
        lines.append("Package: %s" % package_path)
    meta = result.metadata
    if meta.get("created_at"):
        lines.append("Created: %s" % meta["created_at"])
    if meta.get("dataset_path"):
        lines.append("Dataset: %s" % meta["dataset_path"])
    if meta.get("git_branch") or meta.get("git_commit"):
        commit = meta.get("git_commit") or ""
        dirty = " (DIRTY)" if meta.get("git_dirty") else ""
        lines.append("Git: %s @ %s%s" % (meta.get("git_branch", "unknown"), commit[:8] if commit else "unknown", dirty))
    if meta.get("package_version"):
        lines.append("Version: %s" % meta["package_version"])
    if meta.get("dataset_sha256"):
        lines.append("Dataset SHA: %s" % meta["dataset_sha256"][:12])
    if meta.get("db_sha256"):
        lines.append("DB SHA: %s" % meta["db_sha256"][:12])
    lines.append("")
    lines.append("Matrix:  {:,} targets x {:,} columns".format(result.n_targets, result.n_columns))
    lines.append("Non-zero: {:,} (density: {:.6f})".format(result.nnz, result.density))
    if meta.get("n_clones"):
        parts = ["Clones: %s" % meta["n_clones"]]
        if meta.get("n_records"):
            parts.append("Records: {:,}".format(meta["n_records"]))
        if meta.get("seed") is not None:
            parts.append("Seed: %s" % meta["seed"])
        lines.append(", ".join(parts))
    lines.append("")
    pct = 100 * result.n_achievable / result.n_targets if result.n_targets else 0
    lines.append("--- Achievability ---")
    lines.append("Achievable: {:>6,} / {:,} ({:.1f}%)".format(result.n_achievable, result.n_targets, pct))
    lines.append("Impossible: {:>6,} / {:,} ({:.1f}%)".format(result.n_impossible, result.n_targets, 100 - pct))
    lines.append("")
    if result.impossible_targets:
        lines.append("--- Impossible Targets ---")
        for row in result.impossible_targets:
            lines.append("  {:<60s} {:>14,.0f}".format(row["target_name"], row["target_value"]))
        lines.append("")
    if len(result.impossible_by_group) > 1:
        lines.append("--- Impossible Targets by Group ---")
        for row in result.impossible_by_group:
            lines.append("  {:<20s} {:<25s} {:<12s} {:>5d}".format(row["domain_variable"], row["variable"], row["geo_level"], row["count"]))
        lines.append("")
    if result.hardest_targets:
        lines.append("--- Hardest Achievable Targets (%d lowest ratio) ---" % len(result.hardest_targets))
        for row in result.hardest_targets:
            lines.append("  {:<50s} {:>10.4f} {:>14,.0f} {:>14,.0f}".format(row["target_name"], row["ratio"], row["row_sum"], row["target_value"]))
        lines.append("")
    if result.group_summary:
        lines.append("--- Group Summary ---")
        lines.append("  {:<20s} {:<25s} {:<12s} {:>6s} {:>6s} {:>10s}".format("domain", "variable", "geo_level", "total", "ok", "impossible"))
        for row in result.group_summary:
            lines.append("  {:<20s} {:<25s} {:<12s} {:>6d} {:>6d} {:>10d}".format(
                row["domain_variable"], row["variable"], row["geo_level"], row["total"], row["ok"], row["impossible"]))
        lines.append("")
    if result.strict_ratio is not None:
        lines.append("Strict check (ratio < %s): %d failures" % (result.strict_ratio, result.strict_failures))
        lines.append("")
    if result.strict_ratio is not None and result.strict_failures > 0:
        lines.append("RESULT: FAIL (%d targets below ratio %s)" % (result.strict_failures, result.strict_ratio))
    elif result.n_impossible > 0:
        lines.append("RESULT: FAIL (%d impossible targets)" % result.n_impossible)
    else:
        lines.append("RESULT: PASS")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Validate a calibration package")
    parser.add_argument("path", nargs="?", default=None, help="Path to calibration_package.pkl")
    parser.add_argument("--n-hardest", type=int, default=10)
    parser.add_argument("--strict", nargs="?", const=0.01, type=float, default=None, metavar="RATIO")
    args = parser.parse_args(argv)
    from policyengine_us_data.calibration.unified_calibration import STORAGE_FOLDER, load_calibration_package

    path = args.path or os.path.join(STORAGE_FOLDER, "calibration", "calibration_package.pkl")
    if not os.path.exists(path):
        print("Error: package not found at %s" % path, file=sys.stderr)
        return 1
    result = validate_package(load_calibration_package(path), n_hardest=args.n_hardest, strict_ratio=args.strict)
    print(format_report(result, package_path=path))
    if args.strict is not None and result.strict_failures > 0:
        return 2
    return 1 if result.n_impossible > 0 else 0


if __name__ == "__main__":
    sys.exit(main())
