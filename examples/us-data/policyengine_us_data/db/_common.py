"""Shared helpers for the example ETL modules (the real ones share
`policyengine_us_data/db/etl_helpers.py` and the SQLModel classes in
`create_database_tables.py`).

Determinism rules for ``policy_data.db``:
- every ETL step opens one connection, runs one explicit transaction
  (``BEGIN`` ... ``COMMIT``) and closes it, so the bytes depend only on the
  statements and their order (the 13 modules of `make database`, in order);
- target values come from ``random.Random`` seeded with ``(year, module)``
  strings, never from time or process state;
- no timestamps, paths or host names are stored.
"""

import hashlib
import os
import random
import sqlite3

from policyengine_us_data.storage import STORAGE_FOLDER
from policyengine_us_data.utils.db import etl_argparser
from policyengine_us_data.utils.io import UsageError

# The fixed database path every ETL module opens (no flag), as in the real
# modules (`sqlite:///{STORAGE_FOLDER}/calibration/policy_data.db`).
DB_PATH = str(STORAGE_FOLDER / "calibration" / "policy_data.db")
SUPPORTED_YEARS = range(2015, 2035)
GEO_VARIABLES = ("state_fips", "congressional_district_geoid")

# The 2024 "truth" economy the ETL targets are drawn around (per person,
# national averages). The CPS generator in datasets/cps/cps.py is built to
# land near these, so the calibration starts close but not on target.
AGE_BANDS = ((0, 18), (18, 35), (35, 50), (50, 65), (65, 200))
AGE_SHARES = (0.221, 0.232, 0.193, 0.189, 0.165)
AGI_BANDS = ((None, 25000), (25000, 50000), (50000, 100000), (100000, 200000), (200000, None))
AGI_BAND_UNITS_PER_CAPITA = (0.092, 0.076, 0.101, 0.094, 0.050)
PERSONS_PER_HOUSEHOLD = 2.45
PER_CAPITA = {  # dollars per resident, 2024
    "employment_income": 33000.0,
    "self_employment_income": 2450.0,
    "social_security": 3950.0,
    "taxable_interest_income": 700.0,
    "dividend_income": 1450.0,
    "taxable_pension_income": 1650.0,
    "adjusted_gross_income": 41000.0,
    "rent": 2800.0,
    "real_estate_taxes": 1050.0,
    "snap": 300.0,
    "tanf": 6.0,
    "aca_ptc": 260.0,
    "tip_income": 120.0,
}
SNAP_HOUSEHOLDS_PER_CAPITA = 0.066
ACA_UNITS_PER_CAPITA = 0.038
ACA_AGI_PER_CAPITA = 2500.0
MEDICAID_RATE = {True: 0.215, False: 0.16}  # by Medicaid expansion status
PREGNANT_PER_CAPITA = 0.0108


def check_year(year):
    if year not in SUPPORTED_YEARS:
        raise UsageError("--year must be between 2015 and 2034, got %d" % year)
    return year


def rng(year, module):
    return random.Random("policyengine-us-data-example:%d:%s" % (year, module))


def connect(db_path, must_exist=True):
    if must_exist and not os.path.isfile(db_path):
        raise UsageError(
            "database not found: %s (run create_database_tables first)" % db_path
        )
    conn = sqlite3.connect(db_path, isolation_level=None)
    if must_exist:
        try:
            row = conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='targets'"
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise UsageError("cannot open %s as a SQLite database: %s" % (db_path, exc))
        if row[0] != 1:
            conn.close()
            raise UsageError("%s has no targets table (not a policy_data.db?)" % db_path)
    return conn


class Transaction:
    """One explicit write transaction per ETL step."""

    def __init__(self, db_path, must_exist=True):
        self.db_path = db_path
        self.must_exist = must_exist

    def __enter__(self):
        self.conn = connect(self.db_path, self.must_exist)
        self.conn.execute("BEGIN")
        return self.conn

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.conn.execute("COMMIT")
            else:
                self.conn.execute("ROLLBACK")
        finally:
            self.conn.close()
        return False


def definition_hash(parent_id, constraints):
    parts = sorted("%s|%s|%s" % c for c in constraints)
    text = ("" if parent_id is None else str(parent_id)) + "\n" + "\n".join(parts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def add_stratum(conn, parent_id, constraints, notes):
    """Insert a stratum with its constraints; return its id (reuse if present)."""
    h = definition_hash(parent_id, constraints)
    row = conn.execute("SELECT stratum_id FROM strata WHERE definition_hash=?", (h,)).fetchone()
    if row:
        return row[0]
    cur = conn.execute(
        "INSERT INTO strata (definition_hash, parent_stratum_id, notes) VALUES (?, ?, ?)",
        (h, parent_id, notes),
    )
    sid = cur.lastrowid
    conn.executemany(
        "INSERT INTO stratum_constraints (stratum_id, constraint_variable, operation, value)"
        " VALUES (?, ?, ?, ?)",
        [(sid, var, op, str(val)) for var, op, val in constraints],
    )
    return sid


def add_target(conn, stratum_id, variable, year, value, source, tolerance=None, notes=None):
    conn.execute(
        "INSERT INTO targets (variable, period, stratum_id, reform_id, value, active,"
        " tolerance, source, notes) VALUES (?, ?, ?, 0, ?, 1, ?, ?, ?)",
        (variable, year, stratum_id, float(value), tolerance, source, notes),
    )


def geo_strata(conn):
    """Geographic strata: (national_id, {state_fips: id}, {cd_geoid: id})."""
    national = conn.execute(
        "SELECT stratum_id FROM strata WHERE parent_stratum_id IS NULL"
        " AND stratum_id NOT IN (SELECT stratum_id FROM stratum_constraints)"
        " ORDER BY stratum_id LIMIT 1"
    ).fetchone()
    if national is None:
        raise UsageError("database has no national stratum (run create_initial_strata)")
    rows = conn.execute(
        "SELECT sc.stratum_id, sc.constraint_variable, sc.value FROM stratum_constraints sc"
        " WHERE sc.stratum_id IN (SELECT stratum_id FROM stratum_constraints"
        "   GROUP BY stratum_id HAVING count(*) = 1)"
        " AND sc.constraint_variable IN ('state_fips', 'congressional_district_geoid')"
        " ORDER BY sc.stratum_id"
    ).fetchall()
    states, districts = {}, {}
    for sid, var, val in rows:
        (states if var == "state_fips" else districts)[int(val)] = sid
    if not states or not districts:
        raise UsageError("database has no state/district strata (run create_initial_strata)")
    return national[0], states, districts


def district_population(conn, year):
    """{cd_geoid: population} from the etl_age district targets."""
    rows = conn.execute(
        "SELECT CAST(sc.value AS INTEGER) AS cd, SUM(t.value) FROM targets t"
        " JOIN stratum_constraints sc ON sc.stratum_id = t.stratum_id"
        " WHERE t.variable = 'person_count' AND t.period = ? AND t.active = 1"
        " AND sc.constraint_variable = 'congressional_district_geoid'"
        " AND t.stratum_id IN (SELECT stratum_id FROM stratum_constraints"
        "   WHERE constraint_variable = 'age')"
        " GROUP BY cd ORDER BY cd",
        (year,),
    ).fetchall()
    if not rows:
        raise UsageError("database has no district age targets (run etl_age)")
    return {int(cd): float(pop) for cd, pop in rows}


def state_population(conn, year):
    pops = {}
    for cd, pop in district_population(conn, year).items():
        pops[cd // 100] = pops.get(cd // 100, 0.0) + pop
    return pops


def noise(r, sd):
    """Multiplicative lognormal-ish noise factor, deterministic per draw."""
    return max(0.2, 1.0 + r.gauss(0.0, sd))


def simple_main(description, body, *, allow_year=True, extra_args_fn=None):
    """The real ETL module shape: ``etl_argparser`` (``--year`` and any extra
    flags), then ``body(conn, year)`` in one transaction on DB_PATH."""
    _, year = etl_argparser(description, extra_args_fn, allow_year=allow_year)
    check_year(year)
    with Transaction(DB_PATH) as conn:
        n = body(conn, year)
    print("%s: %s targets/rows written to %s" % (description, n, os.path.basename(DB_PATH)))
    return 0
