"""Runs the 13 `make database` steps in one process (same statements, same
order, one transaction each), producing a file byte-identical to running
them one by one with `python -m`. The database is built at `<path>.tmp`
and moved onto `<path>` only after validate_database passed (SQLite stores
no file name, so the bytes do not change).

    python -m policyengine_us_data.db.build_database --year 2024 --db-path PATH
"""

import importlib
import os
import time

from policyengine_us_data.db._common import parse_args
from policyengine_us_data.utils.io import run_main

STEPS = (
    "create_database_tables",
    "create_initial_strata",
    "etl_national_targets",
    "etl_age",
    "etl_medicaid",
    "etl_snap",
    "etl_tanf",
    "etl_state_income_tax",
    "etl_irs_soi",
    "etl_aca_agi_state_targets",
    "etl_aca_marketplace",
    "etl_pregnancy",
    "validate_database",
)


def main(argv=None):
    args = parse_args("build_database", argv)
    tmp = args.db_path + ".tmp"
    step_argv = ["--year", str(args.year), "--db-path", tmp]
    try:
        for name in STEPS:
            t0 = time.perf_counter()
            module = importlib.import_module("policyengine_us_data.db." + name)
            rc = module.main(step_argv)
            if rc:
                return rc
            print("  %-28s %.3fs" % (name, time.perf_counter() - t0))
        os.replace(tmp, args.db_path)
    finally:
        for suffix in ("", "-journal"):
            if os.path.exists(tmp + suffix):
                os.remove(tmp + suffix)
    return 0


if __name__ == "__main__":
    run_main(main)
