"""Mirrors `policyengine_us_data.storage.upload_completed_datasets`: the same
flags; `--validate-only` validates the built datasets in STORAGE_FOLDER
without uploading: cps_2024.h5, and enhanced_cps_2024.h5 unless
`--no-require-enhanced-cps`. The checks are the real ones at the twin's
scale: a minimum file size, the required `household_weight` and an income
group with data, an employment income total and a household weight total
between 100 and 200 million. The twin has nowhere to upload to, so any other
mode is refused.

    python -m policyengine_us_data.storage.upload_completed_datasets --validate-only
"""

import argparse
import os

from policyengine_us_data.storage import STORAGE_FOLDER
from policyengine_us_data.utils.io import UsageError, run_main

# The real minimums are 50 MB (cps) and 95 MB (enhanced); the twin's files are small.
MIN_FILE_SIZES = {
    "enhanced_cps_2024.h5": 20 * 1024,
    "cps_2024.h5": 20 * 1024,
}
REQUIRED_GROUPS = ["household_weight"]
INCOME_GROUPS = ["employment_income_before_lsr", "employment_income"]
MIN_EMPLOYMENT_INCOME_SUM = 5e12
MIN_HOUSEHOLD_WEIGHT_SUM = 100e6
MAX_HOUSEHOLD_WEIGHT_SUM = 200e6


class DatasetValidationError(Exception):
    """Raised when a dataset fails pre-upload validation."""


def validate_dataset(file_path):
    import numpy as np

    from policyengine_us_data.utils.h5io import read_dataset
    from policyengine_us_data.utils.simulation import person_household_row

    filename = os.path.basename(file_path)
    errors = []
    size = os.path.getsize(file_path)
    minimum = MIN_FILE_SIZES.get(filename, 0)
    if size < minimum:
        errors.append("file size %d bytes, expected >= %d" % (size, minimum))
    v, _, _ = read_dataset(str(file_path))
    for group in REQUIRED_GROUPS:
        if group not in v or len(v[group]) == 0:
            errors.append("required group %s is missing or empty" % group)
    income = next((g for g in INCOME_GROUPS if g in v and len(v[g])), None)
    if income is None:
        errors.append("none of %s has data" % ", ".join(INCOME_GROUPS))
    if not errors:
        weights = v["household_weight"]
        person_weight = weights[person_household_row(v["household_id"], v["person_household_id"])]
        emp = float(np.sum(v[income] * person_weight))
        hh = float(np.sum(weights))
        if emp < MIN_EMPLOYMENT_INCOME_SUM:
            errors.append("employment_income sum = $%s, expected > $%s" % (format(emp, ",.0f"), format(MIN_EMPLOYMENT_INCOME_SUM, ",.0f")))
        if hh < MIN_HOUSEHOLD_WEIGHT_SUM:
            errors.append("household_weight sum = %s, expected > %s" % (format(hh, ",.0f"), format(MIN_HOUSEHOLD_WEIGHT_SUM, ",.0f")))
        if hh > MAX_HOUSEHOLD_WEIGHT_SUM:
            errors.append("household_weight sum = %s, expected < %s" % (format(hh, ",.0f"), format(MAX_HOUSEHOLD_WEIGHT_SUM, ",.0f")))
    if errors:
        raise DatasetValidationError("Validation failed for %s:\n" % filename + "\n".join("  - %s" % e for e in errors))
    print("  %s: OK (%d bytes)" % (filename, size))


def validate_built_datasets(require_enhanced_cps=True):
    required = [STORAGE_FOLDER / "cps_2024.h5"]
    if require_enhanced_cps:
        required.append(STORAGE_FOLDER / "enhanced_cps_2024.h5")
    for file_path in required:
        if not file_path.exists():
            raise FileNotFoundError("Expected dataset not found at %s" % file_path)
        validate_dataset(file_path)
    print("\nAll dataset validations passed.")


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-require-enhanced-cps", action="store_true", help="Treat enhanced_cps and small_enhanced_cps as optional.")
    parser.add_argument("--validate-only", action="store_true", help="Validate built datasets without uploading them.")
    upload_mode = parser.add_mutually_exclusive_group()
    upload_mode.add_argument("--stage-only", action="store_true", help="Validate and upload built datasets only to HF staging.")
    upload_mode.add_argument("--promote-only", action="store_true", help="Promote already-staged datasets into the immutable release.")
    parser.add_argument("--run-id", default="", help="Optional staging run ID, for example a CI commit SHA.")
    parser.add_argument("--version", default=None, help="Override the policyengine-us-data version used for staging/promote.")
    args = parser.parse_args(argv)
    if not args.validate_only:
        raise UsageError("the example twin has nowhere to upload to; run with --validate-only")
    try:
        validate_built_datasets(require_enhanced_cps=not args.no_require_enhanced_cps)
    except DatasetValidationError as exc:
        print(str(exc))
        return 1
    return 0


if __name__ == "__main__":
    run_main(main)
