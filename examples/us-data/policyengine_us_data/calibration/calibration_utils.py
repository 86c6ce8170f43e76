"""Mirrors `policyengine_us_data.calibration.calibration_utils`: the shared
helpers of the calibration scripts. The functions the build's adapters import
(`STATE_CODES`, `get_all_cds_from_database`, `save_geo_labels`) have the real
signatures; the rest (DB target loading, target names, per-household
contributions) is the example's small stand-in for the real matrix builder.

Standard library at import time (the area worker imports this module).
"""

import json
import os
import sqlite3
import sys

from policyengine_us_data.db._common import district_population
from policyengine_us_data.utils.geography import STATE_CODES as _STATE_CODES
from policyengine_us_data.utils.io import UsageError

#: fips -> USPS, 51 entries including DC (calibration_utils.py:23 in the real code).
STATE_CODES = dict(_STATE_CODES)

COUNT_VARIABLES = {"person_count": "person", "household_count": "household", "tax_unit_count": "household"}
STATE_DEPENDENT = {"state_income_tax"}
GEO_CONSTRAINTS = ("state_fips", "congressional_district_geoid")


def _sqlite_path(db_uri):
    """`sqlite:///path` (the SQLAlchemy URI the real functions take) -> path."""
    prefix = "sqlite:///"
    if not db_uri.startswith(prefix):
        raise UsageError("expected a sqlite:/// URI, got %r" % (db_uri,))
    return db_uri[len(prefix):]


def _connect_ro(db_path):
    if not os.path.isfile(db_path):
        raise UsageError("database not found: %s" % db_path)
    return sqlite3.connect("file:%s?mode=ro" % db_path, uri=True)


def get_all_cds_from_database(db_uri):
    """Ordered list of every congressional district GEOID in the database.

    The real query (calibration_utils.py:464-485): DISTINCT value of the
    `congressional_district_geoid` constraints, ORDER BY value (text order).
    """
    conn = _connect_ro(_sqlite_path(db_uri))
    try:
        rows = conn.execute(
            "SELECT DISTINCT sc.value AS cd_geoid FROM stratum_constraints sc"
            " WHERE sc.constraint_variable = 'congressional_district_geoid'"
            " ORDER BY sc.value"
        ).fetchall()
    except sqlite3.DatabaseError as exc:
        raise UsageError("cannot read districts from %s: %s" % (db_uri, exc))
    finally:
        conn.close()
    return [row[0] for row in rows]


def save_geo_labels(labels, path):
    """Geo unit labels as a JSON list (as the real `save_geo_labels`)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(labels, f)


def load_db_targets(db_path, period):
    """Active baseline targets of ``period`` with their non-geo constraints,
    and the district populations (for the geography assignment)."""
    conn = _connect_ro(db_path)
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
                "stratum_id": sid,
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
    from policyengine_us_data.calibration.publish_local_area import get_district_friendly_name

    geo = t["geo_level"]
    if geo == "district":
        where = get_district_friendly_name(t["geographic_id"])
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
