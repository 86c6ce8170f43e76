"""Mirrors `policyengine_us_data.db.validate_database` (and the hierarchy
checks of `validate_hierarchy.py`): asserts the geography is exactly
1 national / 51 state / 436 congressional-district strata, that every
district sits under its state, that targets exist for the requested period
and that every target value is finite. Exits non-zero on any failure.
Opens the database read-only (the file is not modified). Like the real
module it has no argparse and opens the path relative to the working
directory (the repository root): DEFAULT_DB_PATH.

    python -m policyengine_us_data.db.validate_database
"""

import math
import os
import sqlite3
import sys
from pathlib import Path

from policyengine_us_data.utils.io import UsageError, run_main

DEFAULT_DB_PATH = Path("policyengine_us_data") / "storage" / "calibration" / "policy_data.db"

EXPECTED = {"national": 1, "state": 51, "district": 436}
REQUIRED_MODULE_TARGETS = (
    ("person_count", "age"),
    ("person_count", "medicaid_enrolled"),
    ("person_count", "is_pregnant"),
    ("snap", "snap"),
    ("tanf", "tanf"),
    ("aca_ptc", "aca_ptc"),
    ("tax_unit_count", "adjusted_gross_income"),
)


def check(conn):
    errors = []
    national = conn.execute(
        "SELECT count(*) FROM strata WHERE parent_stratum_id IS NULL"
        " AND stratum_id NOT IN (SELECT stratum_id FROM stratum_constraints)"
    ).fetchone()[0]
    geo = dict(
        conn.execute(
            "SELECT sc.constraint_variable, count(DISTINCT sc.value) FROM stratum_constraints sc"
            " WHERE sc.stratum_id IN (SELECT stratum_id FROM stratum_constraints"
            "   GROUP BY stratum_id HAVING count(*) = 1)"
            " AND sc.constraint_variable IN ('state_fips', 'congressional_district_geoid')"
            " GROUP BY sc.constraint_variable"
        ).fetchall()
    )
    counts = {
        "national": national,
        "state": geo.get("state_fips", 0),
        "district": geo.get("congressional_district_geoid", 0),
    }
    for level, expected in EXPECTED.items():
        if counts[level] != expected:
            errors.append("expected %d %s strata, found %d" % (expected, level, counts[level]))
    bad_parent = conn.execute(
        "SELECT count(*) FROM stratum_constraints c JOIN strata s ON s.stratum_id = c.stratum_id"
        " JOIN stratum_constraints p ON p.stratum_id = s.parent_stratum_id"
        " AND p.constraint_variable = 'state_fips'"
        " WHERE c.constraint_variable = 'congressional_district_geoid'"
        " AND CAST(c.value AS INTEGER) / 100 != CAST(p.value AS INTEGER)"
    ).fetchone()[0]
    if bad_parent:
        errors.append("%d districts are not under their state" % bad_parent)
    periods = [p for (p,) in conn.execute("SELECT DISTINCT period FROM targets ORDER BY period")]
    n_targets = conn.execute("SELECT count(*) FROM targets").fetchone()[0]
    if n_targets == 0:
        errors.append("no targets")
    for (value,) in conn.execute("SELECT value FROM targets"):
        if value is None or not math.isfinite(value) or value < 0:
            errors.append("invalid target value %r" % (value,))
            break
    for period in periods:
        for variable, domain in REQUIRED_MODULE_TARGETS:
            found = conn.execute(
                "SELECT count(*) FROM target_overview WHERE variable = ? AND period = ?"
                " AND domain_variable = ?",
                (variable, period, domain),
            ).fetchone()[0]
            if not found:
                errors.append("no %s targets with domain %s for %d" % (variable, domain, period))
    return counts, n_targets, errors


def main(argv=None):
    db_path = str(DEFAULT_DB_PATH)
    if not os.path.isfile(db_path):
        raise UsageError("database not found: %s (run from the repository root)" % db_path)
    conn = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True)
    try:
        counts, n_targets, errors = check(conn)
    except sqlite3.DatabaseError as exc:
        raise UsageError("cannot validate %s: %s" % (db_path, exc))
    finally:
        conn.close()
    if errors:
        for e in errors:
            sys.stderr.write("validate_database: FAIL: %s\n" % e)
        return 1
    print(
        "validate_database: OK (%d national, %d states, %d districts, %d targets)"
        % (counts["national"], counts["state"], counts["district"], n_targets)
    )
    return 0


if __name__ == "__main__":
    run_main(main)
