"""The calibration package step as the real Modal wrapper runs it (remote_calibration_runner.py:359-427).

    python package_sidecar.py --report REPORT -- COMMAND...

Runs COMMAND (`python -m policyengine_us_data.calibration.unified_calibration ... --build-only
--package-output PKG ...`), passing its stdout through and keeping a copy in REPORT: with
--build-only that stdout is `validate_package`'s report, which the real pipeline prints and never
saves. Then writes the sidecar `PKG` with `.pkl` replaced by `_meta.json` as
`_write_package_sidecar` does (RCR:327-356): the package's `metadata`, `json.dump(..., indent=2)`.

Exit status: the command's when it fails; 1 when the sidecar cannot be written; 2 on bad usage.
"""

import json
import pickle
import subprocess
import sys

from _adapter import fail, flag_value, write_atomic


def main(argv):
    if "--" not in argv or argv[:1] != ["--report"] or argv.index("--") != 2:
        fail("usage: package_sidecar.py --report REPORT -- COMMAND...", 2)
    report, command = argv[1], argv[3:]
    package_path = flag_value(command, "--package-output")
    if not command or not package_path:
        fail("the command must name the package with --package-output PATH", 2)
    proc = subprocess.Popen(command, stdout=subprocess.PIPE)
    captured = bytearray()
    for line in proc.stdout:
        captured += line
        sys.stdout.buffer.write(line)
        sys.stdout.flush()
    rc = proc.wait()
    if rc != 0:
        fail("the package build exited with %d (no sidecar written)" % rc, rc)
    write_atomic(report, bytes(captured))
    sidecar = package_path.replace(".pkl", "_meta.json")
    try:
        with open(package_path, "rb") as f:
            meta = pickle.load(f).get("metadata", {})
    except Exception as exc:  # the real wrapper only warns; here the sidecar is a declared output
        fail("cannot read the metadata of %s for its sidecar: %s" % (package_path, exc))
    # default=str: a value JSON cannot hold is written as text instead of truncating the file.
    write_atomic(sidecar, json.dumps(meta, indent=2, default=str).encode())
    print("Sidecar metadata written to %s" % sidecar, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
