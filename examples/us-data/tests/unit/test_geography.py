from policyengine_us_data.utils.geography import (
    all_district_geoids,
    get_district_friendly_name,
    parse_district_friendly_name,
)


def test_436_districts_with_at_large_and_dc_geoids():
    geoids = all_district_geoids()
    assert len(geoids) == 436
    assert 200 in geoids  # Alaska at large
    assert 1198 in geoids  # DC delegate


def test_friendly_names_round_trip():
    for geoid in all_district_geoids():
        assert parse_district_friendly_name(get_district_friendly_name(geoid)) == geoid
