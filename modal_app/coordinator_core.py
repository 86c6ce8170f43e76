"""The run's coordinator: this build system's own CLI, run away from the operator's machine, on
Modal (modal_app/runner.py `run_coordinator`) or in the local stand-in (standin.py), with the
volume as its state. Pure Python (standard library + xxhash, and runner_core), no Modal import.

Given a request (src/executors/modal/protocol.ts CoordinatorRequest) it:

1. checks that `buildsys/<digest>/` on the volume is exactly the build system the operator has:
   the XXH3-128 of its MANIFEST is the digest, and every file listed hashes to its line
   (src/executors/modal/buildsys.ts writes them); anything else is refused;
2. checks out the pinned SHA from the volume's git mirror (runner_core.ensure_tree: the commit
   travelled as a bundle, as for actions; HEAD verified);
3. takes the run's coordinator claim (`coordinator-<run id>`, runner_core's claims: an O_EXCL
   file here, a modal.Dict entry on Modal, with a heartbeat), so one run has at most one live
   coordinator; a restarted coordinator (Modal's retry, the stand-in's restart) waits for the dead
   one's claim to go stale (same host: its pid is gone; any host: no heartbeat for
   runner_core.CLAIM_STALE_S) and takes it over;
4. runs `node <buildsys>/dist/cli.mjs <args> REPO=<checkout>` with BUILD_CACHE_DIR = the volume's
   `state/` (the run record, logs, action cache, blobs and the call journal all there),
   BUILD_RUN_ID / BUILD_PINNED_SHA from the request: a restarted coordinator builds the same run
   id, takes cache hits for what finished and reattaches to in-flight calls through the journal;
5. commits the volume every COMMIT_EVERY_S while the CLI runs, and at the end.

The CLI's exit code is the result (0 completed, 1 a target failed, 130 cancelled). A CLI killed by
a signal (the container's OOM killer...) is raised as an error, so that Modal retries the call.

Volume layout (src/executors/modal/remote-state.ts holds the same names):
    buildsys/<digest>/MANIFEST      the build system, content-addressed
    state/                          BUILD_CACHE_DIR of every coordinator
    state/runs/<run id>/meta.json   the run record (first written by the operator at --detach)
    state/runs/<run id>/run.log     the coordinator's output, every attempt appended
    claims/coordinator-<run id>     the live coordinator (stand-in; a modal.Dict on Modal)
"""

import datetime
import json
import os
import socket
import subprocess
import threading
import time

import runner_core
from runner_core import Refused

PROTOCOL = runner_core.PROTOCOL
COMMIT_EVERY_S = 10.0


def _xxh128_bytes(data):
    import xxhash

    return xxhash.xxh3_128(data).hexdigest()


def verify_buildsys(root, digest):
    """The directory of the build system `digest`, after checking every byte of it against the digest."""
    if len(digest) != 32 or any(c not in "0123456789abcdef" for c in digest):
        raise Refused("bad-request", "not a build system digest: %r" % digest)
    base = os.path.join(root, "buildsys", digest)
    try:
        with open(os.path.join(base, "MANIFEST"), "rb") as f:
            manifest = f.read()
    except OSError:
        raise Refused("buildsys-missing", "the build system %s is not on the volume (no %s); rerun ./build.ts pipeline --detach to upload it" % (digest, os.path.join(base, "MANIFEST")))
    got = _xxh128_bytes(manifest)
    if got != digest:
        raise Refused("buildsys-mismatch", "refusing to run: the MANIFEST of build system %s hashes to %s" % (digest, got))
    for line in manifest.decode().splitlines():
        want, size, path = line.split(" ", 2)
        full = os.path.join(base, path)
        try:
            have, have_size = runner_core.digest_file(full)
        except OSError:
            raise Refused("buildsys-mismatch", "refusing to run: build system %s lacks %s" % (digest, path))
        if have != want or have_size != int(size):
            raise Refused("buildsys-mismatch", "refusing to run: %s of build system %s hashes to %s, not %s" % (path, digest, have, want))
    return base


def state_dir(root):
    return os.path.join(root, "state")


def claim_key(run_id):
    return "coordinator-" + run_id


def _check_run_id(run_id):
    if not run_id or "/" in run_id or ".." in run_id:
        raise Refused("bad-request", "not a run id: %r" % run_id)


def _log(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a") as f:
        f.write(text)


def _fail_run(root, run_id, message):
    """Marks the run failed in its meta.json (a refusal before the CLI could record anything)."""
    path = os.path.join(state_dir(root), "runs", run_id, "meta.json")
    try:
        with open(path) as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return
    meta.update(status="failed", error=message, finishedAt=datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z"))
    tmp = "%s.tmp-%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        json.dump(meta, f, indent=2)
    os.replace(tmp, path)


def _take_claim(claims, key, owner, reload, poll_s, give_up_s):
    """True once this coordinator holds the run's claim; False if another live one keeps it."""
    deadline = time.time() + give_up_s
    while True:
        if claims.take(key, owner):
            return True
        holder = claims.holder(key)
        if holder is not None and runner_core._holder_gone(holder):
            claims.break_stale(key, holder.get("id"))
            continue
        if time.time() > deadline:
            return False
        time.sleep(poll_s)
        reload()


def coordinator_env(request, root, tree, extra_env):
    env = dict(os.environ)
    env.update(request.get("env") or {})
    env.update(extra_env or {})
    env.update(
        BUILD_CACHE_DIR=state_dir(root),
        BUILD_VOLUME_STATE="1",
        BUILD_RUN_ID=request["runId"],
        BUILD_PINNED_SHA=request["sha"],
        BUILD_PINNED_DIRTY="1" if request.get("dirty") else "0",
        CI="1",
    )
    return env


def run_coordinator(request, root, node, commit=lambda: None, reload=lambda: None, claims=None, extra_env=None, poll_s=1.0, claim_wait_s=None):
    """Runs the run's CLI to its end (see the module docstring); returns {protocol, runId, ok, exitCode} or a refusal."""
    run_id = request.get("runId") or ""
    if request.get("protocol") != PROTOCOL:
        return {"protocol": PROTOCOL, "runId": run_id, "ok": False, "reason": "protocol-mismatch", "message": "the deployed coordinator speaks protocol %d, the operator %s; redeploy with `modal deploy modal_app/runner.py`" % (PROTOCOL, request.get("protocol"))}
    reload()
    run_log = os.path.join(state_dir(root), "runs", run_id, "run.log")
    try:
        _check_run_id(run_id)
        base = verify_buildsys(root, request["buildsys"])
        tree = runner_core.ensure_tree(root, request["sha"])
    except Refused as exc:
        if run_id and "/" not in run_id:
            _log(run_log, "coordinator refused: %s\n" % exc)
            _fail_run(root, run_id, "coordinator refused (%s): %s" % (exc.reason, exc))
            commit()
        return {"protocol": PROTOCOL, "runId": run_id, "ok": False, "reason": exc.reason, "message": str(exc)}
    claims = claims or runner_core.FileClaims(root)
    owner = runner_core._claim_owner()
    key = claim_key(run_id)
    wait = claim_wait_s if claim_wait_s is not None else 2 * runner_core.CLAIM_STALE_S
    if not _take_claim(claims, key, owner, reload, poll_s, wait):
        return {"protocol": PROTOCOL, "runId": run_id, "ok": False, "reason": "duplicate-coordinator", "message": "another coordinator of run %s is alive (claim %s); this one exits" % (run_id, key)}
    with runner_core._holding(claims, [key], owner):
        _log(run_log, "coordinator started on %s (pid %d) at %s, build system %s\n" % (socket.gethostname(), os.getpid(), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), request["buildsys"]))
        argv = [node, os.path.join(base, "dist", "cli.mjs"), *request["args"], "REPO=" + tree]
        stop = threading.Event()

        def committer():
            while not stop.wait(COMMIT_EVERY_S):
                commit()

        beat = threading.Thread(target=committer, daemon=True)
        with open(run_log, "ab") as out:
            proc = subprocess.Popen(argv, cwd=base, env=coordinator_env(request, root, tree, extra_env), stdout=out, stderr=subprocess.STDOUT)
            beat.start()
            try:
                code = proc.wait()
            finally:
                stop.set()
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        commit()
    if code < 0:
        raise RuntimeError("the coordinator's CLI was killed by signal %d; the call is retried and resumes run %s" % (-code, run_id))
    return {"protocol": PROTOCOL, "runId": run_id, "ok": code == 0, "exitCode": code}
