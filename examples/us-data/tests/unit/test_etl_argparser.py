import sys

import pytest

from policyengine_us_data.utils.db import DEFAULT_YEAR, etl_argparser


def test_year_defaults_and_parses(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["etl"])
    assert etl_argparser("x", allow_year=True)[1] == DEFAULT_YEAR
    monkeypatch.setattr(sys, "argv", ["etl", "--year", "2023"])
    assert etl_argparser("x")[1] == 2023


def test_unknown_flag_exits_2(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["etl", "--db-path", "x.db"])
    with pytest.raises(SystemExit) as exit:
        etl_argparser("x")
    assert exit.value.code == 2
