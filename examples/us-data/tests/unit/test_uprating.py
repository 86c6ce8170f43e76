from policyengine_us_data.utils.uprating import START_YEAR, factors, growth_factors


def test_indices_start_at_one_and_grow():
    table = factors()
    for row in table.values():
        assert row[START_YEAR] == 1.0
        assert row[2024] > 1.0


def test_growth_factors_chain_to_the_indices():
    table = factors()
    growth = growth_factors(table)
    for variable, row in table.items():
        index = 1.0
        for year in sorted(row):
            index *= 1.0 + growth[variable][year]
        assert abs(index - row[max(row)]) < 1e-4
