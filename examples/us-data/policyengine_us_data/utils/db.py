"""Mirrors `policyengine_us_data.utils.db`: the argument parser every ETL
module shares (`etl_argparser`). It parses `sys.argv`, so an unknown flag
exits 2, and prints `Using year: Y`.
"""

import argparse

DEFAULT_YEAR = 2024


def etl_argparser(description, extra_args_fn=None, *, allow_year=False):
    """Returns ``(args, year)``. With ``allow_year`` ``--year`` defaults to
    None (then DEFAULT_YEAR), otherwise to DEFAULT_YEAR, as in the real one."""
    parser = argparse.ArgumentParser(description=description)
    if allow_year:
        parser.add_argument(
            "--year",
            type=int,
            default=None,
            help="Target year for calibration data. Defaults to %(default)s.",
        )
    else:
        parser.add_argument(
            "--year",
            type=int,
            default=DEFAULT_YEAR,
            help="Target year for calibration data. Default: %(default)s",
        )
    if extra_args_fn is not None:
        extra_args_fn(parser)

    args = parser.parse_args()
    year = args.year if args.year is not None else DEFAULT_YEAR
    print(f"Using year: {year}")

    return args, year
