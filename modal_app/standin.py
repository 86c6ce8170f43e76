"""The local Modal STAND-IN's container: runs one spawned call of the runner in this process.

Only Modal's transport is replaced: src/executors/modal/standin.ts writes the request to
`<stand-in dir>/calls/<call id>/request.json` and starts this script detached (its own session,
so it outlives a killed orchestrator, as a Modal call does). The script runs the very same
`runner_core.run_request` as the Modal functions, with `<stand-in dir>/volume/build` as the
volume root, and writes `result.json` atomically when done. A call directory with a dead pid and
no result is a lost container (the stand-in's preemption).

A coordinator call (`run_coordinator`, coordinator_core.py) is supervised as Modal's retries
would: this process starts each attempt as a "container" of its own (`--container`, a new
session, its pid in `container.pid`, one line per attempt in `attempts`) and starts it again
when it dies without a result, up to COORDINATOR_ATTEMPTS in all (tests may lower it with
MODAL_STANDIN_COORDINATOR_ATTEMPTS, e.g. 1: a coordinator that dies stays dead, as one whose
retries are exhausted); a `cancelled` file (written by
`./build.ts cancel`) stops it. The container's Node is the operator's (BUILD_STANDIN_NODE).

    python standin.py <stand-in dir> <call id> [--container]
"""

import json
import os
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import coordinator_core  # noqa: E402
import runner_core  # noqa: E402

COORDINATOR_FUNCTION = "run_coordinator"
#: Modal's retries of run_coordinator (runner.py) allow 1 + 3 attempts; the stand-in the same.
COORDINATOR_ATTEMPTS = 4


def coordinator_attempts():
    """COORDINATOR_ATTEMPTS, or MODAL_STANDIN_COORDINATOR_ATTEMPTS (tests only; a whole number >= 1)."""
    value = os.environ.get("MODAL_STANDIN_COORDINATOR_ATTEMPTS", "")
    return int(value) if value.isdigit() and int(value) >= 1 else COORDINATOR_ATTEMPTS


def _write_result(call_dir, value):
    tmp = os.path.join(call_dir, "result.json.tmp")
    with open(tmp, "w") as f:
        json.dump(value, f)
    os.replace(tmp, os.path.join(call_dir, "result.json"))


def _run(standin_dir, envelope):
    root = os.path.join(standin_dir, "volume", "build")
    os.makedirs(root, exist_ok=True)
    if envelope["function"] == COORDINATOR_FUNCTION:
        return coordinator_core.run_coordinator(envelope["request"], root, node=os.environ.get("BUILD_STANDIN_NODE") or "node", extra_env={"MODAL_STANDIN_DIR": standin_dir})
    return runner_core.run_request(envelope["request"], root)


def supervise(standin_dir, call_id, call_dir):
    """Runs the coordinator call's attempts, each in a container (session) of its own."""
    attempts = coordinator_attempts()
    for attempt in range(1, attempts + 1):
        if os.path.exists(os.path.join(call_dir, "cancelled")):
            return 0
        child = subprocess.Popen([sys.executable, os.path.abspath(__file__), standin_dir, call_id, "--container"], start_new_session=True)
        tmp = os.path.join(call_dir, "container.pid.tmp")
        with open(tmp, "w") as f:
            f.write(str(child.pid))
        os.replace(tmp, os.path.join(call_dir, "container.pid"))
        with open(os.path.join(call_dir, "attempts"), "a") as f:
            f.write("%d %d %f\n" % (attempt, child.pid, time.time()))
        child.wait()
        if os.path.exists(os.path.join(call_dir, "result.json")) or os.path.exists(os.path.join(call_dir, "cancelled")):
            return 0
    _write_result(call_dir, {"state": "failed", "reason": "remote-preempted", "message": "the coordinator's container was lost %d times; the run is left as it was" % attempts})
    return 0


def main(standin_dir, call_id, container=False):
    call_dir = os.path.join(standin_dir, "calls", call_id)
    with open(os.path.join(call_dir, "request.json")) as f:
        envelope = json.load(f)
    if envelope["function"] == COORDINATOR_FUNCTION and not container:
        return supervise(standin_dir, call_id, call_dir)
    try:
        value = {"state": "done", "value": _run(standin_dir, envelope)}
    except Exception as exc:  # a runner bug: reported like Modal reports a remote exception
        if container:
            # A coordinator that raised is a crashed container: no result, so the supervisor retries it.
            traceback.print_exc()
            return 1
        value = {"state": "failed", "reason": "remote-error", "message": "%s: %s\n%s" % (type(exc).__name__, exc, traceback.format_exc())}
    _write_result(call_dir, value)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], container=sys.argv[3:] == ["--container"]))
