"""Mirrors the pieces of `policyengine_us_data.calibration.validate_staging`
that the area worker uses: the active targets of a period, the sanity check,
and `validate_area`, which compares one area file's weighted totals with the
database targets of its geography. Each result row has the 16 columns of the
real `validation_results.csv` (CSV_COLUMNS).
"""

import math

CSV_COLUMNS = [
    "area_type",
    "area_id",
    "display_name",
    "district",
    "variable",
    "target_name",
    "period",
    "target_value",
    "sim_value",
    "error",
    "rel_error",
    "abs_error",
    "rel_abs_error",
    "sanity_check",
    "sanity_reason",
    "in_training",
]

# Plausibility ceilings by geography (the real SANITY_CEILINGS, validate_staging.py:49-72).
SANITY_CEILINGS = {
    "national": {"dollar": 30e12, "person_count": 340e6, "household_count": 135e6, "count": 340e6},
    "state": {"dollar": 5e12, "person_count": 40e6, "household_count": 15e6, "count": 40e6},
    "district": {"dollar": 500e9, "person_count": 1e6, "household_count": 400e3, "count": 1e6},
}


def _classify_variable(variable):
    if variable == "household_count":
        return "household_count"
    if variable == "person_count":
        return "person_count"
    if variable.endswith("_count"):
        return "count"
    return "dollar"


def _run_sanity_check(sim_value, variable, geo_level):
    if not math.isfinite(sim_value):
        return "FAIL", "non-finite value"
    vtype = _classify_variable(variable)
    ceilings = SANITY_CEILINGS.get(geo_level, SANITY_CEILINGS["state"])
    ceiling = ceilings.get(vtype, ceilings["dollar"])
    if abs(sim_value) > ceiling:
        return "FAIL", "|%.2e| > %.0e ceiling (%s @ %s)" % (sim_value, ceiling, vtype, geo_level)
    return "PASS", ""


def _query_all_active_targets(db_path, period):
    """Every active baseline target of the period (as dicts)."""
    from policyengine_us_data.calibration.calibration_utils import load_db_targets

    targets, _ = load_db_targets(db_path, period)
    return targets


def validate_area(area, targets, training_mask, area_type, area_id, display_id, period):
    """Rows comparing the area's weighted totals with ``targets`` (those of its geography).

    ``area`` is the area file's ``(variables, entities)``; a district-level target
    counts only the households of that district.
    """
    import numpy as np

    from policyengine_us_data.calibration.calibration_utils import Features, target_name
    from policyengine_us_data.utils.simulation import _RATE_TABLE

    data, entities = area
    feats = Features(data, entities)
    weight = data["household_weight"]
    cd = data["congressional_district_geoid"]
    rows = []
    for t, in_training in zip(targets, training_mask):
        f = feats.get(t["variable"], t["constraints"])
        if t["variable"] == "state_income_tax":
            f = f * _RATE_TABLE[data["state_fips"]]
        if t["geo_level"] == "district":
            f = np.where(cd == int(t["geographic_id"]), f, 0.0)
        sim_value = float(np.dot(f, weight))
        target_value = t["value"]
        error = sim_value - target_value
        abs_error = abs(error)
        rel_error = error / target_value
        rel_abs_error = abs_error / abs(target_value)
        sanity_check, sanity_reason = _run_sanity_check(sim_value, t["variable"], t["geo_level"])
        rows.append(
            {
                "area_type": area_type,
                "area_id": area_id,
                "display_name": display_id,
                "district": "",
                "variable": t["variable"],
                "target_name": target_name(t),
                "period": int(period),
                "target_value": target_value,
                "sim_value": sim_value,
                "error": error,
                "rel_error": rel_error,
                "abs_error": abs_error,
                "rel_abs_error": rel_abs_error,
                "sanity_check": sanity_check,
                "sanity_reason": sanity_reason,
                "in_training": bool(in_training),
            }
        )
    return rows
