"""The local Modal STAND-IN's container: runs one spawned call of the runner in this process.

Only Modal's transport is replaced: src/executors/modal-standin.ts writes the request to
`<stand-in dir>/calls/<call id>/request.json` and starts this script detached (its own session,
so it outlives a killed orchestrator, as a Modal call does). The script runs the very same
`runner_core.run_request` as the Modal functions, with `<stand-in dir>/volume/build` as the
volume root, and writes `result.json` atomically when done. A call directory with a dead pid and
no result is a lost container (the stand-in's preemption).

    python standin.py <stand-in dir> <call id>
"""

import json
import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import runner_core  # noqa: E402


def main(standin_dir, call_id):
    call_dir = os.path.join(standin_dir, "calls", call_id)
    with open(os.path.join(call_dir, "request.json")) as f:
        envelope = json.load(f)
    root = os.path.join(standin_dir, "volume", "build")
    os.makedirs(root, exist_ok=True)
    try:
        value = {"state": "done", "value": runner_core.run_request(envelope["request"], root)}
    except Exception as exc:  # a runner bug: reported like Modal reports a remote exception
        value = {"state": "failed", "reason": "remote-error", "message": "%s: %s\n%s" % (type(exc).__name__, exc, traceback.format_exc())}
    tmp = os.path.join(call_dir, "result.json.tmp")
    with open(tmp, "w") as f:
        json.dump(value, f)
    os.replace(tmp, os.path.join(call_dir, "result.json"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
