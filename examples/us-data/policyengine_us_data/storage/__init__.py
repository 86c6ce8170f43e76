"""Mirrors `policyengine_us_data.storage`: STORAGE_FOLDER is this directory.

Every dataset script and ETL module reads its inputs from, and writes its
outputs to, fixed paths here (there are no path flags), as in the real
repository: `acs_2022.h5`, `cps_2024.h5`, `calibration/policy_data.db`, ...
Generated files are git-ignored.
"""

from pathlib import Path

STORAGE_FOLDER = Path(__file__).parent
CALIBRATION_FOLDER = STORAGE_FOLDER / "calibration_targets"
