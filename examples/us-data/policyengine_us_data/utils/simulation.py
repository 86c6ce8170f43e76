"""Tiny "microsimulation" formulas shared by the dataset builders, the
calibration matrix builder and the area worker (a stand-in for the
policyengine-us variables that the real pipeline computes).
"""

import numpy as np

from policyengine_us_data.utils.geography import STATE_INCOME_TAX_RATE

PERIOD = 2024

HOUSEHOLD_VARIABLES = (
    "household_id",
    "household_weight",
    "state_fips",
    "congressional_district_geoid",
    "snap",
    "tanf",
    "rent",
    "aca_ptc",
    "real_estate_taxes",
    "adjusted_gross_income",
    "state_income_tax",
)
PERSON_VARIABLES = (
    "person_id",
    "person_household_id",
    "age",
    "is_male",
    "employment_income",
    "self_employment_income",
    "social_security",
    "taxable_interest_income",
    "dividend_income",
    "taxable_pension_income",
    "medicaid_enrolled",
    "is_pregnant",
)
# Income components of AGI (household = tax unit in this example).
AGI_COMPONENTS = (
    "employment_income",
    "self_employment_income",
    "taxable_interest_income",
    "dividend_income",
    "taxable_pension_income",
)
TAXABLE_SOCIAL_SECURITY_SHARE = 0.5


def person_household_row(household_id, person_household_id):
    """Row index into the household arrays for every person."""
    rows = np.searchsorted(household_id, person_household_id)
    if len(rows) and (
        rows.max() >= len(household_id)
        or np.any(household_id[rows] != person_household_id)
    ):
        raise ValueError("person_household_id does not match household_id")
    return rows


def household_sum(values, rows, n_households):
    return np.bincount(rows, weights=values, minlength=n_households)


def compute_agi(v, rows=None):
    """Household AGI from person-level income components."""
    n = len(v["household_id"])
    if rows is None:
        rows = person_household_row(v["household_id"], v["person_household_id"])
    total = np.zeros(len(rows))
    for name in AGI_COMPONENTS:
        total += v[name]
    total += TAXABLE_SOCIAL_SECURITY_SHARE * v["social_security"]
    return np.round(household_sum(total, rows, n), 2)


_RATE_TABLE = np.zeros(100)
for _fips, _rate in STATE_INCOME_TAX_RATE.items():
    _RATE_TABLE[_fips] = _rate


def state_income_tax(agi, state_fips):
    """Flat effective state income tax on positive AGI."""
    return np.round(np.maximum(agi, 0.0) * _RATE_TABLE[np.asarray(state_fips, dtype=np.int64)], 2)


def entities_for(variables):
    ent = {}
    for name in variables:
        if name in HOUSEHOLD_VARIABLES or name in EXTRA_HOUSEHOLD_VARIABLES:
            ent[name] = "household"
        elif name in PERSON_VARIABLES or name in EXTRA_PERSON_VARIABLES:
            ent[name] = "person"
        else:
            raise KeyError("unknown variable %r" % name)
    return ent


EXTRA_HOUSEHOLD_VARIABLES = ("is_puf_clone", "net_worth", "original_household_id")
EXTRA_PERSON_VARIABLES = ("tip_income",)
