"""National H5 validation, warn-only as in the real pipeline (local_area.py:1166-1187).

    python national_validation.py --output REPORT -- COMMAND...

Runs COMMAND (`python -m policyengine_us_data.calibration.validate_national_h5 --h5-path
national/US.h5`), passing its stdout through and keeping it in REPORT (the real run archives it as
diagnostics/national_validation.txt, PL:647-652). A non-zero exit of the validation is only a
warning, as in the real pipeline; the report is kept either way.

Exit status: 0 (also when the validation failed); 127 when the command cannot start; 2 on bad usage.
"""

import os
import subprocess
import sys


def main(argv):
    if argv[:1] != ["--output"] or len(argv) < 4 or argv[2] != "--":
        sys.stderr.write("national_validation: error: usage: national_validation.py --output REPORT -- COMMAND...\n")
        return 2
    report, command = argv[1], argv[3:]
    try:
        proc = subprocess.run(command, stdout=subprocess.PIPE)
    except OSError as exc:
        sys.stderr.write("national_validation: error: cannot run %s: %s\n" % (command[0], exc))
        return 127
    sys.stdout.buffer.write(proc.stdout)
    os.makedirs(os.path.dirname(os.path.abspath(report)), exist_ok=True)
    tmp = report + ".tmp"
    with open(tmp, "wb") as f:
        f.write(proc.stdout)
    os.replace(tmp, report)
    if proc.returncode != 0:
        print("national_validation: WARNING: national H5 validation exited with %d (warn-only, as the real pipeline); report kept in %s" % (proc.returncode, report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
