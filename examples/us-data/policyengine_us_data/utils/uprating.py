"""Mirrors `policyengine_us_data.utils.uprating`: a library module with no
`__main__` (running it with `python -m` does nothing, as in the real
repository). `create_policyengine_uprating_factors_table()` writes
`STORAGE_FOLDER/uprating_factors.csv` (growth indices: rows = variables,
columns = years 2015..2034, 2015 = 1.0) and `uprating_growth_factors.csv`
(year-on-year growth); the real one derives them from policyengine-us
parameter projections, this one from fixed annual growth rates. The PUF
build (datasets/puf/puf.py) calls it, as the real puf.py does.
"""

START_YEAR = 2015
END_YEAR = 2034
ANNUAL_GROWTH = {
    "adjusted_gross_income": 0.045,
    "dividend_income": 0.055,
    "employment_income": 0.042,
    "household_weight": 0.006,
    "long_term_capital_gains": 0.06,
    "self_employment_income": 0.035,
    "social_security": 0.038,
    "taxable_interest_income": 0.03,
    "taxable_pension_income": 0.032,
}
# A couple of years deviate from trend (pandemic dip / inflation spike).
SHOCKS = {2020: -0.03, 2021: 0.02, 2022: 0.025}


def factors():
    table = {}
    for variable in sorted(ANNUAL_GROWTH):
        index, row = 1.0, {}
        for year in range(START_YEAR, END_YEAR + 1):
            if year > START_YEAR:
                shock = SHOCKS.get(year, 0.0) if variable != "household_weight" else 0.0
                index *= 1.0 + ANNUAL_GROWTH[variable] + shock
            row[year] = round(index, 6)
        table[variable] = row
    return table


def growth_factors(table):
    """Year-on-year growth (the first year is 0)."""
    out = {}
    for variable, row in table.items():
        years = sorted(row)
        out[variable] = {y: (0.0 if i == 0 else round(row[y] / row[years[i - 1]] - 1.0, 6)) for i, y in enumerate(years)}
    return out


def to_csv(table):
    years = list(range(START_YEAR, END_YEAR + 1))
    lines = ["Variable," + ",".join(str(y) for y in years)]
    for variable in sorted(table):
        lines.append(variable + "," + ",".join("%.6f" % table[variable][y] for y in years))
    return "\n".join(lines) + "\n"


def create_policyengine_uprating_factors_table():
    """Writes both CSVs into STORAGE_FOLDER and returns the index table."""
    from policyengine_us_data.storage import STORAGE_FOLDER
    from policyengine_us_data.utils.io import atomic_write_text

    table = factors()
    atomic_write_text(str(STORAGE_FOLDER / "uprating_factors.csv"), to_csv(table))
    atomic_write_text(str(STORAGE_FOLDER / "uprating_growth_factors.csv"), to_csv(growth_factors(table)))
    return table


def read_factors(path):
    """Parse an uprating CSV: {variable: {year: factor}}."""
    import csv

    from policyengine_us_data.utils.io import UsageError

    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or rows[0][0] != "Variable":
        raise UsageError("%s is not an uprating factors CSV" % path)
    years = [int(y) for y in rows[0][1:]]
    return {r[0]: dict(zip(years, (float(x) for x in r[1:]))) for r in rows[1:] if r}
