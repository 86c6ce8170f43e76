"""Static US geography tables (mirrors `policyengine_us_data.utils.census` /
`STATE_CODES` and `get_district_friendly_name` in the real repository).

Pure Python, no third-party imports: the area worker imports this module on
every invocation, so it must stay cheap.

Seats follow the 2020 apportionment (118th Congress): 435 voting districts
plus the DC delegate = 436 congressional districts. As in the real code, an
at-large state's district GEOID ends in ``00`` (DC's ends in ``98``) and its
friendly name is ``XX-01``.
"""

# (usps, fips, name, seats, population_2023_thousands, state_income_tax_rate,
#  medicaid_expansion)
# The tax rate is a rough effective rate on AGI used by the example only.
STATES = (
    ("AL", 1, "Alabama", 7, 5108, 0.035, False),
    ("AK", 2, "Alaska", 1, 733, 0.0, True),
    ("AZ", 4, "Arizona", 9, 7431, 0.025, True),
    ("AR", 5, "Arkansas", 4, 3068, 0.035, True),
    ("CA", 6, "California", 52, 38965, 0.055, True),
    ("CO", 8, "Colorado", 8, 5877, 0.044, True),
    ("CT", 9, "Connecticut", 5, 3617, 0.050, True),
    ("DE", 10, "Delaware", 1, 1031, 0.045, True),
    ("DC", 11, "District of Columbia", 1, 679, 0.060, True),
    ("FL", 12, "Florida", 28, 22610, 0.0, False),
    ("GA", 13, "Georgia", 14, 11029, 0.045, False),
    ("HI", 15, "Hawaii", 2, 1435, 0.060, True),
    ("ID", 16, "Idaho", 2, 1964, 0.045, True),
    ("IL", 17, "Illinois", 17, 12550, 0.0495, True),
    ("IN", 18, "Indiana", 9, 6862, 0.0315, True),
    ("IA", 19, "Iowa", 4, 3207, 0.040, True),
    ("KS", 20, "Kansas", 4, 2940, 0.045, False),
    ("KY", 21, "Kentucky", 6, 4526, 0.040, True),
    ("LA", 22, "Louisiana", 6, 4573, 0.030, True),
    ("ME", 23, "Maine", 2, 1395, 0.050, True),
    ("MD", 24, "Maryland", 8, 6180, 0.050, True),
    ("MA", 25, "Massachusetts", 9, 7001, 0.050, True),
    ("MI", 26, "Michigan", 13, 10037, 0.0425, True),
    ("MN", 27, "Minnesota", 8, 5737, 0.055, True),
    ("MS", 28, "Mississippi", 4, 2940, 0.040, False),
    ("MO", 29, "Missouri", 8, 6196, 0.040, True),
    ("MT", 30, "Montana", 2, 1133, 0.045, True),
    ("NE", 31, "Nebraska", 3, 1978, 0.045, True),
    ("NV", 32, "Nevada", 4, 3194, 0.0, True),
    ("NH", 33, "New Hampshire", 2, 1402, 0.0, True),
    ("NJ", 34, "New Jersey", 12, 9290, 0.045, True),
    ("NM", 35, "New Mexico", 3, 2114, 0.035, True),
    ("NY", 36, "New York", 26, 19571, 0.055, True),
    ("NC", 37, "North Carolina", 14, 10835, 0.045, True),
    ("ND", 38, "North Dakota", 1, 784, 0.015, True),
    ("OH", 39, "Ohio", 15, 11785, 0.030, True),
    ("OK", 40, "Oklahoma", 5, 4053, 0.040, True),
    ("OR", 41, "Oregon", 6, 4233, 0.070, True),
    ("PA", 42, "Pennsylvania", 17, 12961, 0.0307, True),
    ("RI", 44, "Rhode Island", 2, 1096, 0.040, True),
    ("SC", 45, "South Carolina", 7, 5373, 0.045, False),
    ("SD", 46, "South Dakota", 1, 919, 0.0, True),
    ("TN", 47, "Tennessee", 9, 7126, 0.0, False),
    ("TX", 48, "Texas", 38, 30503, 0.0, False),
    ("UT", 49, "Utah", 4, 3417, 0.0465, True),
    ("VT", 50, "Vermont", 1, 647, 0.045, True),
    ("VA", 51, "Virginia", 11, 8715, 0.045, True),
    ("WA", 53, "Washington", 10, 7812, 0.0, True),
    ("WV", 54, "West Virginia", 2, 1770, 0.040, True),
    ("WI", 55, "Wisconsin", 8, 5910, 0.045, False),
    ("WY", 56, "Wyoming", 1, 584, 0.0, False),
)

STATE_CODES = {fips: usps for usps, fips, *_ in STATES}  # fips -> USPS
STATE_FIPS = {usps: fips for usps, fips, *_ in STATES}  # USPS -> fips
STATE_NAMES = {fips: name for _, fips, name, *_ in STATES}
SEATS = {fips: seats for _, fips, _, seats, *_ in STATES}
POPULATION_THOUSANDS = {fips: pop for _, fips, _, _, pop, *_ in STATES}
STATE_INCOME_TAX_RATE = {fips: rate for _, fips, _, _, _, rate, _ in STATES}
MEDICAID_EXPANSION = {fips: exp for _, fips, _, _, _, _, exp in STATES}

DC_FIPS = 11

# NYC is the five counties {36005, 36047, 36061, 36081, 36085} in the real
# catalogue. This example has no county geography, so NYC is approximated by
# the 11 New York districts lying (almost) entirely inside the city:
# NY-05 .. NY-15. Its LPT weight is 11, as in the real code.
NYC_COUNTY_FIPS = (36005, 36047, 36061, 36081, 36085)
NYC_DISTRICT_GEOIDS = tuple(3600 + n for n in range(5, 16))


def district_geoids(fips):
    """Congressional district GEOIDs (state_fips * 100 + district) of a state."""
    seats = SEATS[fips]
    if fips == DC_FIPS:
        return (fips * 100 + 98,)
    if seats == 1:
        return (fips * 100,)
    return tuple(fips * 100 + d for d in range(1, seats + 1))


def all_district_geoids():
    out = []
    for _, fips, *_ in STATES:
        out.extend(district_geoids(fips))
    return tuple(out)


def get_district_friendly_name(geoid):
    """298 -> 'AK-01' (at-large 00 / DC 98 map to 01), 601 -> 'CA-01'."""
    geoid = int(geoid)
    fips, number = divmod(geoid, 100)
    if number in (0, 98):
        number = 1
    return "%s-%02d" % (STATE_CODES[fips], number)


def parse_district_friendly_name(name):
    """'AK-01' -> 200, 'DC-01' -> 1198, 'CA-12' -> 612. Raises ValueError."""
    try:
        usps, num = name.split("-")
        fips = STATE_FIPS[usps]
        number = int(num)
    except (ValueError, KeyError):
        raise ValueError("not a district id: %r" % (name,))
    geoids = district_geoids(fips)
    if len(geoids) == 1:
        if number != 1:
            raise ValueError("no such district: %r" % (name,))
        return geoids[0]
    geoid = fips * 100 + number
    if geoid not in geoids:
        raise ValueError("no such district: %r" % (name,))
    return geoid


assert len(STATES) == 51
assert sum(s for u, f, n, s, *_ in STATES if u != "DC") == 435
assert len(all_district_geoids()) == 436
