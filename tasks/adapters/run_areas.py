"""The area worker, with each item's result checked and its validation rows kept.

    python run_areas.py --rows-dir DIR -- COMMAND...

COMMAND is the real worker (`python -m modal_app.worker_script --work-items JSON --output-dir OUT
...`). The worker exits 0 even when items failed (worker_script.py:523-538), so this adapter
reads its result, the last non-empty stdout line (imports and validation children also write to
fd 1), and fails unless every requested item is in `completed` and its file exists under OUT.
Each completed item's `validation_rows` (the 16 columns of validation_results.csv) and its
`validation_summary` go to DIR/<states|districts|cities|national>/<id>.json.

Exit status: the worker's when it fails to start its work (every item counts as failed, as in
local_area.py:531-537); 1 when an item failed, was skipped or its file is missing, or the result
cannot be parsed; 2 on bad usage.
"""

import json
import os
import subprocess
import sys

from _adapter import AREA_DIRS, fail, flag_value, write_atomic


def main(argv):
    if argv[:1] != ["--rows-dir"] or len(argv) < 4 or argv[2] != "--":
        fail("usage: run_areas.py --rows-dir DIR -- COMMAND...", 2)
    rows_dir, command = argv[1], argv[3:]
    raw_items, output_dir = flag_value(command, "--work-items"), flag_value(command, "--output-dir")
    if raw_items is None or output_dir is None:
        fail("the worker command must pass --work-items and --output-dir", 2)
    items = json.loads(raw_items)
    keys = ["%s:%s" % (i["type"], i["id"]) for i in items]
    proc = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    sys.stdout.write(proc.stdout)
    if proc.returncode != 0:
        fail("the area worker exited with %d before building anything; every item failed: %s" % (proc.returncode, ", ".join(keys)), proc.returncode)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    try:
        result = json.loads(lines[-1])
        completed, errors = set(result["completed"]), result.get("errors", [])
    except (IndexError, ValueError, KeyError, TypeError) as exc:
        fail("cannot parse the area worker's result (its last stdout line): %s" % exc)
    problems = []
    for item, key in zip(items, keys):
        file = os.path.join(output_dir, AREA_DIRS.get(item["type"], item["type"]), "%s.h5" % item["id"])
        if key in result.get("failed", []):
            why = "; ".join(e.get("error", "") for e in errors if e.get("item") == key) or "no error given"
            problems.append("%s failed: %s" % (key, why))
        elif key not in completed:
            problems.append("%s was not built (the worker skipped it: no matching geography)" % key)
        elif not os.path.isfile(file):
            problems.append("%s is reported completed but %s does not exist" % (key, file))
    for p in problems:
        sys.stderr.write("run_areas: error: area %s\n" % p)
    if problems:
        return 1
    for item, key in zip(items, keys):
        kind = AREA_DIRS[item["type"]]
        rows = [r for r in result.get("validation_rows", []) if r.get("area_type") == kind and str(r.get("area_id")) == str(item["id"])]
        summary = result.get("validation_summary", {}).get(key)
        write_atomic(os.path.join(rows_dir, kind, "%s.json" % item["id"]), json.dumps({"item": key, "summary": summary, "rows": rows}) + "\n")
    print("run_areas: %d items built and checked; validation rows in %s" % (len(items), rows_dir), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
