"""Mirrors `policyengine_us_data.db.create_database_tables`: creates a fresh
`policy_data.db` with the `strata`, `stratum_constraints` and `targets`
tables (same columns as the real SQLModel schema) plus the `stratum_domain`
and `target_overview` views.

The database is the fixed STORAGE_FOLDER/calibration/policy_data.db. Like
the real module this one has no argparse (extra argv is ignored); `make
database` removes the file first, and so does this step (a stale file would
otherwise change the bytes).

    python -m policyengine_us_data.db.create_database_tables
"""

import os

from policyengine_us_data.db._common import DB_PATH, Transaction
from policyengine_us_data.utils.io import ensure_parent, run_main

SCHEMA = (
    """CREATE TABLE strata (
    stratum_id INTEGER PRIMARY KEY,
    definition_hash VARCHAR(64) NOT NULL,
    parent_stratum_id INTEGER REFERENCES strata (stratum_id),
    notes TEXT,
    CONSTRAINT uq_strata_definition_hash UNIQUE (definition_hash)
)""",
    "CREATE INDEX ix_strata_parent_stratum_id ON strata (parent_stratum_id)",
    """CREATE TABLE stratum_constraints (
    stratum_id INTEGER NOT NULL REFERENCES strata (stratum_id),
    constraint_variable TEXT NOT NULL,
    operation TEXT NOT NULL,
    value TEXT NOT NULL,
    notes TEXT,
    PRIMARY KEY (stratum_id, constraint_variable, operation)
)""",
    """CREATE TABLE targets (
    target_id INTEGER PRIMARY KEY,
    variable TEXT NOT NULL,
    period INTEGER NOT NULL,
    stratum_id INTEGER NOT NULL REFERENCES strata (stratum_id),
    reform_id INTEGER NOT NULL DEFAULT 0,
    value FLOAT,
    active BOOLEAN NOT NULL DEFAULT 1,
    tolerance FLOAT,
    source TEXT,
    notes TEXT,
    CONSTRAINT _target_unique UNIQUE (variable, period, stratum_id, reform_id)
)""",
    "CREATE INDEX ix_targets_stratum_id ON targets (stratum_id)",
    """CREATE VIEW stratum_domain AS
SELECT DISTINCT sc.stratum_id, sc.constraint_variable AS domain_variable
FROM stratum_constraints sc
WHERE sc.constraint_variable NOT IN ('state_fips', 'congressional_district_geoid')""",
    """CREATE VIEW target_overview AS
SELECT
    t.target_id, t.stratum_id, t.variable, t.reform_id, t.value, t.period, t.active,
    CASE
        WHEN MAX(CASE WHEN sc.constraint_variable = 'congressional_district_geoid'
                      THEN 1 ELSE 0 END) = 1 THEN 'district'
        WHEN MAX(CASE WHEN sc.constraint_variable = 'state_fips'
                      THEN 1 ELSE 0 END) = 1 THEN 'state'
        ELSE 'national'
    END AS geo_level,
    COALESCE(
        MAX(CASE WHEN sc.constraint_variable = 'congressional_district_geoid' THEN sc.value END),
        MAX(CASE WHEN sc.constraint_variable = 'state_fips' THEN sc.value END),
        'US'
    ) AS geographic_id,
    GROUP_CONCAT(DISTINCT CASE
        WHEN sc.constraint_variable NOT IN ('state_fips', 'congressional_district_geoid')
        THEN sc.constraint_variable END) AS domain_variable
FROM targets t
LEFT JOIN stratum_constraints sc ON t.stratum_id = sc.stratum_id
GROUP BY t.target_id, t.stratum_id, t.variable, t.reform_id, t.value, t.period, t.active""",
)


def main(argv=None):
    ensure_parent(DB_PATH)
    for suffix in ("", "-journal", "-wal", "-shm"):
        if os.path.exists(DB_PATH + suffix):
            os.remove(DB_PATH + suffix)
    with Transaction(DB_PATH, must_exist=False) as conn:
        for statement in SCHEMA:
            conn.execute(statement)
    print("create_database_tables: created %d schema objects" % len(SCHEMA))
    return 0


if __name__ == "__main__":
    run_main(main)
