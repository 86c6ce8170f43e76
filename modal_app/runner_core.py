"""The generic action runner: the one piece of code that executes a build action away from the
orchestrator, on Modal (modal_app/runner.py) or in the local stand-in (modal_app/standin.py).

Pure Python (standard library + `xxhash`), no Modal import, so the very same code runs in both
places and can be tested without an account. Given a request (the pinned SHA, and one or more
actions: argv with placeholders, env, input digests with their run-relative paths, expected
outputs; optionally batches: one command covering several of them), it:

1. obtains the repository at exactly the pinned SHA from a git mirror on the volume (commits
   arrive as git bundles uploaded by the orchestrator; the checkout is verified with
   `git rev-parse HEAD == sha` and a clean status on every use, else the action is refused:
   code is never taken from someone's working tree or a baked image);
2. builds (once per key, claimed so 50 area containers do not race) the Python environment the
   action names, with the environment target's own command and the image's interpreter, under
   `envs/<key>` on the volume; it works in every container of the image;
3. materialises inputs from the volume's content-addressed store (`cas/<aa>/<digest>`);
4. runs the command in a private scratch run directory (`{run}`), with `{checkpoint}` =
   `checkpoints/<action key>` on the volume, so two fits never share a checkpoint and a
   preempted fit resumes its own;
5. hashes every output with XXH3-128 (the same digest as the TypeScript side, src/hash.ts),
   stores it by digest on the volume and returns the action result: digests, sizes, exit code,
   timings and the log tail.

Volume layout under `root` (`/vol/build` on Modal, `<stand-in dir>/volume/build` locally):
    cas/<aa>/<digest>            blobs (inputs uploaded by the orchestrator, outputs of actions)
    git/mirror.git               bare mirror; refs/pinned/<sha> keeps every imported commit
    git/bundles/<sha>.bundle     uploaded by the orchestrator; imported on first use
    git/shas/<sha>               marker: <sha> is in the mirror (the orchestrator lists these)
    trees/<sha>                  verified checkout of <sha>
    envs/<key>                   Python environments, by the key of their target
    checkpoints/<action key>/    resumable state of one action
    logs/<action key>.log        full log of the last attempt (a batch's log, copied, for its members)
    logs/batch-<first key>.log   log of a batch command
    results/<action key>.json    the last result of that action
    claims/<action key>          the call running that action now (see run_once)
    envs/<key>.claim             the container building that environment (stand-in; a modal.Dict on Modal)
"""

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

#: Bumped whenever the request or result shape changes; the orchestrator sends its own and the
#: runner refuses a mismatch (redeploy with `modal deploy modal_app/runner.py`).
PROTOCOL = 3

LOG_TAIL_LINES = 40
_CHUNK = 8 * 1024 * 1024
_PLACEHOLDERS = ("run", "python", "checkpoint")
#: Machine-specific variables taken from the runner's own environment (the orchestrator ships
#: only the action's declared and fixed variables); the same rule as src/config.ts.
_MACHINE_ENV = ("PATH", "HOME", "TMPDIR", "USER", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE")


class Refused(Exception):
    """An expected failure of the whole request (wrong SHA, missing commit, protocol...)."""

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason


# --- hashing and the content-addressed store ---------------------------------------------------


def digest_file(path):
    """XXH3-128 hex digest and size of a file, streamed (equal to src/hash.ts digestFile)."""
    import xxhash

    h = xxhash.xxh3_128()
    size = 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(_CHUNK)
            if not chunk:
                break
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def blob_path(root, digest):
    return os.path.join(root, "cas", digest[:2], digest)


def store_blob(root, path, digest):
    """Copies a file into the store under its digest, atomically; a present blob is kept."""
    dest = blob_path(root, digest)
    if os.path.exists(dest):
        return
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    tmp = "%s.tmp-%s" % (dest, uuid.uuid4().hex)
    shutil.copyfile(path, tmp)
    os.chmod(tmp, 0o444)
    os.replace(tmp, dest)


def _place(src, dest):
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    if os.path.lexists(dest):
        os.unlink(dest)
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)


# --- the pinned tree ---------------------------------------------------------------------------


def _git(args, cwd=None, check=True):
    env = dict(os.environ, GIT_NO_REPLACE_OBJECTS="1", GIT_TERMINAL_PROMPT="0")
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise Refused("git-failed", "git %s: %s" % (" ".join(args), (proc.stderr or proc.stdout).strip()))
    return proc


def _pinned(mirror, sha):
    return _git(["--git-dir", mirror, "rev-parse", "--verify", "refs/pinned/%s^{commit}" % sha], check=False).stdout.strip()


def _import_commit(root, mirror, sha):
    """What refs/pinned/<sha> resolves to, fetching it from its bundle when absent. Judged by the
    ref, not the objects: a concurrent import has the objects before it writes the ref, and two
    imports racing for the ref lock settle on the same value, so a lost race is retried."""
    got = _pinned(mirror, sha)
    for attempt in range(5):
        if got:
            return got
        bundle = os.path.join(root, "git", "bundles", sha + ".bundle")
        if not os.path.isfile(bundle):
            raise Refused("sha-missing", "commit %s is not in the volume's git mirror and no bundle was uploaded for it" % sha)
        fetched = _git(["--git-dir", mirror, "fetch", "--quiet", bundle, "+refs/build/pinned:refs/pinned/" + sha], check=False)
        got = _pinned(mirror, sha)
        if not got and attempt == 4:
            raise Refused("git-failed", "importing %s from its bundle failed: %s" % (sha, (fetched.stderr or fetched.stdout).strip()))
        if not got:
            time.sleep(0.5)
    return got


def _atomic_dir(final, build):
    """Builds a directory in a temporary sibling and renames it into place (a loser discards)."""
    tmp = "%s.tmp-%s" % (final, uuid.uuid4().hex)
    try:
        build(tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            if not os.path.isdir(final):
                raise
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


def _relative_alternates(tree, mirror):
    """`clone --shared` links the checkout to the mirror's objects by absolute path; relative (to
    the checkout's objects directory, the same for its temporary and final names), so the volume
    works wherever it is mounted."""
    objects = os.path.join(tree, ".git", "objects")
    with open(os.path.join(objects, "info", "alternates"), "w") as f:
        f.write(os.path.relpath(os.path.join(mirror, "objects"), objects) + "\n")


def verify_tree(tree, sha):
    """Refuses a checkout whose HEAD is not exactly `sha`, or whose files were modified."""
    head = _git(["-C", tree, "rev-parse", "HEAD"], check=False)
    actual = head.stdout.strip() if head.returncode == 0 else "(unreadable: %s)" % head.stderr.strip()
    if actual != sha:
        raise Refused("sha-mismatch", "refusing to run: the checkout %s is at %s, not the pinned %s" % (tree, actual, sha))
    status = _git(["-C", tree, "status", "--porcelain", "--untracked-files=all"]).stdout.strip()
    if status:
        raise Refused("sha-mismatch", "refusing to run: the checkout of %s on the volume is modified (%s)" % (sha, status.splitlines()[0]))


def ensure_tree(root, sha):
    """The verified checkout of `sha`: imported from its bundle into the mirror on first use."""
    if len(sha) != 40 or any(c not in "0123456789abcdef" for c in sha):
        raise Refused("bad-request", "not a full commit id: %r" % sha)
    tree = os.path.join(root, "trees", sha)
    if not os.path.isdir(tree):
        mirror = os.path.join(root, "git", "mirror.git")
        if not os.path.isdir(mirror):
            os.makedirs(os.path.dirname(mirror), exist_ok=True)
            _atomic_dir(mirror, lambda tmp: _git(["init", "--quiet", "--bare", tmp]))
        got = _import_commit(root, mirror, sha)
        if got != sha:
            raise Refused("sha-mismatch", "refusing to run: the mirror's refs/pinned/%s resolves to %s" % (sha, got or "nothing"))
        marker = os.path.join(root, "git", "shas", sha)
        os.makedirs(os.path.dirname(marker), exist_ok=True)
        open(marker, "w").close()
        os.makedirs(os.path.dirname(tree), exist_ok=True)

        def checkout(tmp):
            _git(["clone", "--quiet", "--shared", "--no-checkout", mirror, tmp])
            _relative_alternates(tmp, mirror)
            _git(["-C", tmp, "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", sha])

        _atomic_dir(tree, checkout)
    verify_tree(tree, sha)
    return tree


def export_tree(tree, dest):
    """The files of HEAD exactly as the orchestrator's `git archive` would lay them out."""
    os.makedirs(dest, exist_ok=True)
    archive = subprocess.Popen(["git", "-C", tree, "archive", "--format=tar", "HEAD"], stdout=subprocess.PIPE)
    tar = subprocess.run(["tar", "-x", "-C", dest], stdin=archive.stdout, capture_output=True)
    archive.stdout.close()
    if archive.wait() != 0 or tar.returncode != 0:
        raise Refused("git-failed", "could not export %s: %s" % (tree, tar.stderr.decode(errors="replace").strip()))


# --- running ------------------------------------------------------------------------------------


def action_env(shipped):
    env = {k: v for k, v in os.environ.items() if k in _MACHINE_ENV or k.startswith(("PIP_", "UV_")) or k.lower().endswith("_proxy")}
    env.update(shipped)
    return env


def secret_env(action):
    """The action's secret variables: the request names them (`secretEnv`, never a value); the
    values come from this container's environment, where the Modal secrets attached to this call
    put them (the stand-in: its own environment). Only this action's process gets them."""
    out = {}
    for name in action.get("secretEnv") or []:
        value = os.environ.get(name)
        if not value:
            raise Refused("modal-secret-missing", "%s is not in this container's environment: the Modal secret holding it was not attached to the call (create it with `modal secret create`, see the README's Running on Modal)" % name)
        out[name] = value
    return out


def scrub_log(log, secrets):
    """Replaces the values of `secrets` in the log file by `***` (as the orchestrator scrubs a local log)."""
    secrets = [v for v in secrets if v]
    if not secrets or not os.path.isfile(log):
        return
    with open(log, "rb") as f:
        data = f.read()
    clean = data
    for value in secrets:
        clean = clean.replace(value.encode(), b"***")
    if clean != data:
        with open(log, "wb") as f:
            f.write(clean)


def resolve_argv(command, values):
    """`{run}`, `{python}`, `{checkpoint}` filled in; `{resume-from:F}` becomes `--resume-from F` if F exists."""

    def fill(token):
        for name in _PLACEHOLDERS:
            token = token.replace("{%s}" % name, values[name])
        return token

    argv = []
    for token in command:
        if token.startswith("{resume-from:") and token.endswith("}"):
            path = fill(token[len("{resume-from:") : -1])
            if os.path.exists(path):
                argv += ["--resume-from", path]
            continue
        argv.append(fill(token))
    return argv


def tail(path, lines=LOG_TAIL_LINES):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().split("\n")[-lines:])


#: The interpreter every environment is built from: the image's own, at a path that is the same in
#: every container of the image (`/usr/local/bin/python3.14` on Modal), so a venv's `bin/python`
#: symlink resolves wherever the volume is mounted. Never a uv-managed download in the building
#: container's HOME (that is what made an environment work only in the container that built it).
IMAGE_PYTHON = os.environ.get("BUILD_IMAGE_PYTHON") or sys.executable
#: How long an environment build may hold its claim before another container takes it over.
ENV_CLAIM_STALE_SECONDS = float(os.environ.get("BUILD_ENV_CLAIM_STALE_SECONDS") or 3600)
_ENV_POLL_SECONDS = 2.0


def claim_env_file(root):
    """The stand-in's (and a POSIX volume's) environment claim: `envs/<key>.claim`, created with
    O_CREAT|O_EXCL (atomic on one file system). Kept apart from the action-key claims on purpose.
    Returns `claim(key) -> release | None`; a claim older than ENV_CLAIM_STALE_SECONDS (its holder
    died) is taken over."""

    def claim(key):
        path = os.path.join(root, "envs", key + ".claim")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    stale = time.time() - os.path.getmtime(path) > ENV_CLAIM_STALE_SECONDS
                except OSError:
                    stale = True  # released in between: try again
                if not stale:
                    return None
                try:
                    os.unlink(path)
                except OSError:
                    pass
                continue
            with os.fdopen(fd, "w") as f:
                f.write("%d %f\n" % (os.getpid(), time.time()))

            def release():
                try:
                    os.unlink(path)
                except OSError:
                    pass

            return release
        return None

    return claim


def _env_build_env(shipped_env):
    """The build's environment: the image's interpreter first on PATH and pinned for uv."""
    env = action_env(shipped_env)
    env["PATH"] = os.path.dirname(IMAGE_PYTHON) + os.pathsep + env.get("PATH", "")
    env["UV_PYTHON"] = IMAGE_PYTHON
    env["UV_PYTHON_DOWNLOADS"] = "never"
    return env


def check_relocatable(python, image_python=IMAGE_PYTHON):
    """Refuses an environment whose interpreter does not resolve to the image's own: it would
    break in any other container (or at another mount point)."""
    real = os.path.realpath(python)
    if not os.path.isfile(real):
        raise Refused("env-failed", "the environment's %s links to %s, which does not exist here; rebuild it from the image's interpreter %s" % (python, real, image_python))
    if real != os.path.realpath(image_python):
        raise Refused("env-failed", "the environment's %s links to %s, not to the image's interpreter %s: it would only work in the container that built it" % (python, real, os.path.realpath(image_python)))


def ensure_env(root, spec, cwd, shipped_env, claim=None, reload=lambda: None, commit=lambda: None):
    """`envs/<key>/bin/python`, built once with its target's command when absent.

    One container claims the build (`claim`, atomic create: a file here, a modal.Dict entry on
    Modal); the others wait for its `.complete`, reloading the volume, and take over if the claim
    is released without one (the build failed) or goes stale. An environment whose interpreter is
    not this image's (built by an older image) is rebuilt the same way. The build itself lands by an
    atomic rename, so even two builders cannot leave a half environment."""
    if not spec:
        return "python3"
    key = spec["key"]
    final = os.path.join(root, "envs", key)
    complete = os.path.join(final, ".complete")
    claim = claim or claim_env_file(root)
    python = os.path.join(final, "bin", "python")
    while not _env_ready(complete, python):
        release = claim(key)
        if release is None:
            time.sleep(_ENV_POLL_SECONDS)
            reload()
            continue
        try:
            reload()
            if not _env_ready(complete, python):
                _build_env(root, spec, final, cwd, shipped_env)
                commit()  # the waiters reload to see it
        finally:
            release()
    return python


def _env_ready(complete, python):
    """Built, and its interpreter is this image's (one built by an older image is rebuilt)."""
    if not os.path.isfile(complete):
        return False
    try:
        check_relocatable(python)
    except Refused:
        return False
    return True


def _build_env(root, spec, final, cwd, shipped_env):
    key = spec["key"]
    os.makedirs(os.path.dirname(final), exist_ok=True)
    log = os.path.join(root, "logs", "env-%s.log" % key)
    os.makedirs(os.path.dirname(log), exist_ok=True)

    def build(tmp):
        # {interpreter}: the image's own Python (the laptop's interpreter path means nothing here).
        argv = [t.replace("{out}", tmp).replace("{interpreter}", IMAGE_PYTHON) for t in spec["command"]]
        with open(log, "wb") as out:
            rc = subprocess.run(argv, cwd=cwd, env=_env_build_env(shipped_env), stdout=out, stderr=subprocess.STDOUT).returncode
        if rc != 0:
            raise Refused("env-failed", "building the Python environment %s failed (exit %d):\n%s" % (key, rc, tail(log)))
        check_relocatable(os.path.join(tmp, "bin", "python"))
        with open(os.path.join(tmp, ".complete"), "w") as f:
            f.write(key)

    if os.path.isdir(final):
        shutil.rmtree(final, ignore_errors=True)
    _atomic_dir(final, build)


def _failure(action, reason, message, started, log_tail="", exit_code=None):
    return {
        "key": action["key"],
        "ok": False,
        "reason": reason,
        "message": message,
        "exitCode": exit_code,
        "outputs": {},
        "startedAt": started,
        "runSeconds": round(time.time() - started, 3),
        "logTail": log_tail,
    }


# --- claims: one execution per action key -----------------------------------------------------
#
# A call may be dispatched twice for one key: the orchestrator was killed after spawning it but
# before its call journal recorded the call, and the rerun spawned it again. The runner therefore
# claims a key before running it: `claims/<key>` created with O_CREAT|O_EXCL, which exactly one
# creator wins on one file system (the stand-in's volume is a local directory). A call that finds
# the key claimed waits for the claimant's `results/<key>.json` and returns it; a call that finds
# a result already there returns it at once. A claim whose holder is gone (same host: its pid is
# dead or reused; any host: its heartbeat, the claim's mtime, is older than CLAIM_STALE_S) is
# broken by renaming it away (one rename wins) and the key claimed afresh.
#
# On Modal itself a Volume is not such a file system: each container works on its own view and
# `commit()` publishes it, last writer winning, so two containers can both "create" the claim. The
# primitive that gives the atomic create there is a `modal.Dict`: `d.put(key, owner,
# skip_if_exists=True)` returns False when the key is already present, atomically across
# containers; `claim_store` lets runner.py pass one (see CLAIMS_DICT there). Results still travel
# on the volume, published by commit() after they are written.

#: A claim not refreshed for this long belongs to a dead container.
CLAIM_STALE_S = 120
CLAIM_HEARTBEAT_S = 10


class FileClaims:
    """Claims as files under `<root>/claims` (see above); the stand-in's and the default."""

    def __init__(self, root):
        self.dir = os.path.join(root, "claims")

    def _path(self, key):
        return os.path.join(self.dir, key)

    def take(self, key, owner):
        os.makedirs(self.dir, exist_ok=True)
        try:
            fd = os.open(self._path(key), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            json.dump(owner, f)
        return True

    def holder(self, key):
        """The claim's owner record plus its age in seconds, or None when unclaimed."""
        try:
            with open(self._path(key)) as f:
                owner = json.load(f)
            age = time.time() - os.stat(self._path(key)).st_mtime
        except (OSError, ValueError):
            return None
        return dict(owner, age=age)

    def refresh(self, key):
        try:
            os.utime(self._path(key))
        except OSError:
            pass

    def release(self, key, owner):
        holder = self.holder(key)
        if holder and holder.get("id") == owner["id"]:
            try:
                os.unlink(self._path(key))
            except OSError:
                pass

    def break_stale(self, key, owner_id):
        """Removes a dead holder's claim; only one of several breakers' renames succeeds."""
        grave = "%s.stale-%s" % (self._path(key), uuid.uuid4().hex)
        try:
            os.rename(self._path(key), grave)
        except OSError:
            return
        try:
            with open(grave) as f:
                moved = json.load(f)
        except (OSError, ValueError):
            moved = {}
        if moved.get("id") != owner_id:  # a fresh claim was taken meanwhile: put it back
            try:
                os.link(grave, self._path(key))
            except OSError:
                pass
        os.unlink(grave)


def _start_time(pid):
    """Field 22 of /proc/<pid>/stat (start time), '' when unreadable: pid plus this names a process."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return ""
    fields = stat[stat.rindex(")") + 2 :].split(" ")
    return fields[19] if fields[0] not in ("Z", "X") else ""


def _claim_owner():
    import socket

    pid = os.getpid()
    return {"id": uuid.uuid4().hex, "host": socket.gethostname(), "pid": pid, "start": _start_time(pid), "at": time.time()}


def _holder_gone(holder):
    import socket

    if holder["age"] > CLAIM_STALE_S:
        return True
    if holder.get("host") != socket.gethostname():
        return False
    start = _start_time(int(holder.get("pid") or 0))
    return not start or (holder.get("start") and start != holder["start"])


def _read_result(root, key, action=None):
    """The stored successful result of `key` whose outputs are all on the volume (with the
    content digests `action` declares), else None."""
    try:
        with open(os.path.join(root, "results", key + ".json")) as f:
            result = json.load(f)
    except (OSError, ValueError):
        return None
    outputs = result.get("outputs", {})
    if not result.get("ok") or not all(os.path.isfile(blob_path(root, o["digest"])) for o in outputs.values()):
        return None
    if action and any("content" not in outputs.get(rel, {}) for rel in action.get("contentDigest") or {}):
        return None
    return result


def run_once(root, action, claims, run, reload=lambda: None, poll_s=0.5):
    """`run()` for this action unless another call has run it or is running it: then its result."""
    key = action["key"]
    owner = _claim_owner()
    while True:
        done = _read_result(root, key, action)
        if done is not None:
            return dict(done, reused=True)
        if claims.take(key, owner):
            break
        holder = claims.holder(key)
        if holder is not None and _holder_gone(holder):
            claims.break_stale(key, holder.get("id"))
            continue
        time.sleep(poll_s)
        reload()
    # Claimed: a result may have landed between our read and the claim.
    done = _read_result(root, key, action)
    if done is not None:
        claims.release(key, owner)
        return dict(done, reused=True)
    with _holding(claims, [key], owner):
        return run()


def run_batch_once(root, actions, claims, run_batch, run_one, reload=lambda: None, poll_s=0.5):
    """`run_batch()` (one process over all `actions`) when this call claims every one of them, else
    each through run_once. The batch command covers all its items and cannot be narrowed here, so a
    batch with a member already run or running elsewhere (a duplicate dispatch) does not run as a
    batch: its done members are reused, the running ones waited for, the free ones run alone."""
    owner = _claim_owner()
    taken = []
    for a in actions:
        if _read_result(root, a["key"], a) is not None or not claims.take(a["key"], owner):
            break
        taken.append(a["key"])
    # A result may have landed between a read and its claim.
    if len(taken) == len(actions) and all(_read_result(root, a["key"], a) is None for a in actions):
        with _holding(claims, taken, owner):
            return run_batch()
    for k in taken:
        claims.release(k, owner)
    return [run_once(root, a, claims, lambda a=a: run_one(a), reload, poll_s) for a in actions]


@contextlib.contextmanager
def _holding(claims, keys, owner):
    """Keeps this call's claims on `keys` fresh (a heartbeat thread) while the body runs; releases them after."""
    import threading

    stop = threading.Event()

    def heartbeat():
        while not stop.wait(CLAIM_HEARTBEAT_S):
            for key in keys:
                claims.refresh(key)

    beat = threading.Thread(target=heartbeat, daemon=True)
    beat.start()
    try:
        yield
    finally:
        stop.set()
        for key in keys:
            claims.release(key, owner)


def _stage(root, action, run_dir):
    """Places the action's inputs and clears its outputs in the run directory; a failure message or None."""
    for rel, digest in sorted(action["inputs"].items()):
        src = blob_path(root, digest)
        if not os.path.isfile(src):
            return "input %s (%s) is not on the volume; rerun to upload it" % (rel, digest)
        _place(src, os.path.join(run_dir, rel))
    for rel in action["outputs"]:
        out = os.path.join(run_dir, rel)
        if os.path.lexists(out):
            os.unlink(out)
        os.makedirs(os.path.dirname(out), exist_ok=True)
    return None


def _run_logged(root, command, key, run_dir, cwd, python, env, log):
    """Runs one command with its placeholders filled, all output to `log`; its exit code."""
    checkpoint = os.path.join(root, "checkpoints", key)
    if any("{checkpoint}" in t for t in command):
        os.makedirs(checkpoint, exist_ok=True)
    argv = resolve_argv(command, {"run": run_dir, "python": python, "checkpoint": checkpoint})
    os.makedirs(os.path.dirname(log), exist_ok=True)
    with open(log, "wb") as out:
        try:
            return subprocess.run(argv, cwd=cwd, env=action_env(env), stdout=out, stderr=subprocess.STDOUT).returncode
        except OSError as exc:
            out.write(("cannot start %s: %s\n" % (argv[0], exc)).encode())
            return 127


def sqlite_content_digest(path):
    """The content digest of an SQLite database (equal to src/caching/content-digest.ts
    sqliteDigest): its bytes with the header's write counters zeroed (24-27, 92-99)."""
    import xxhash

    h = xxhash.xxh3_128()
    h.update(b"sqlite-content-v1\0")
    with open(path, "rb") as f:
        head = bytearray(f.read(100))
        if len(head) < 100 or bytes(head[:16]) != b"SQLite format 3\0":
            raise ValueError("is declared an SQLite database (contentDigest) but is not one")
        head[24:28] = bytes(4)
        head[92:100] = bytes(8)
        h.update(bytes(head))
        while True:
            chunk = f.read(_CHUNK)
            if not chunk:
                break
            h.update(chunk)
    return h.hexdigest()


#: Where the orchestrator places src/python-env/hdf5_digest.py among an action's inputs.
HDF5_DIGEST_SCRIPT = ".adapters/hdf5_digest.py"


def content_digest(kind, path, run_dir, python):
    """A declared output's content digest (Target.contentDigest), computed here as the
    orchestrator computes a local one, so the executor never changes a downstream key."""
    if kind == "sqlite":
        return sqlite_content_digest(path)
    if kind == "hdf5":
        proc = subprocess.run([python, os.path.join(run_dir, HDF5_DIGEST_SCRIPT), path], capture_output=True, text=True)
        digest = proc.stdout.strip()
        if proc.returncode != 0 or len(digest) != 32:
            why = (proc.stderr.strip().split("\n") or ["no digest printed"])[-1]
            raise ValueError("could not be digested as HDF5 (contentDigest): %s" % why.replace("hdf5_digest: ", ""))
        return digest
    raise ValueError("has an unknown content digest kind %r" % kind)


def _collect(root, action, run_dir, log, started, python):
    """Hashes and stores the action's outputs after its command succeeded; its result."""
    outputs = {}
    declared = action.get("contentDigest") or {}
    for rel in action["outputs"]:
        path = os.path.join(run_dir, rel)
        if not os.path.isfile(path):
            return _failure(action, "missing-output", "the command succeeded but did not write %s" % rel, started, tail(log), 0)
        digest, size = digest_file(path)
        store_blob(root, path, digest)
        outputs[rel] = {"digest": digest, "size": size}
        if rel in declared:
            try:
                outputs[rel]["content"] = content_digest(declared[rel], path, run_dir, python)
            except (OSError, ValueError) as exc:
                return _failure(action, "content-digest", "%s %s" % (rel, exc), started, tail(log), 0)
    result = {
        "key": action["key"],
        "ok": True,
        "exitCode": 0,
        "outputs": outputs,
        "startedAt": started,
        "runSeconds": round(time.time() - started, 3),
        "logTail": tail(log),
    }
    _write_result(root, result)
    return result


def run_action(root, action, run_dir, cwd, python, commit):
    """Runs one action in the scratch run directory; returns its result (never raises Refused)."""
    started = time.time()
    key = action["key"]
    missing = _stage(root, action, run_dir)
    if missing:
        return _failure(action, "input-missing", missing, started)
    try:
        secrets = secret_env(action)
    except Refused as exc:
        return _failure(action, exc.reason, str(exc), started)
    log = os.path.join(root, "logs", key + ".log")
    code = _run_logged(root, action["command"], key, run_dir, cwd, python, dict(action["env"], **secrets), log)
    scrub_log(log, secrets.values())
    commit()  # checkpoints and logs survive whatever happens next
    if code != 0:
        return _failure(action, "command-failed", "command exited with %d" % code, started, tail(log), code)
    result = _collect(root, action, run_dir, log, started, python)
    commit()
    return result


def run_batch(root, command, actions, run_dir, cwd, python, commit):
    """Runs several actions as one process, the target's batch command over their items (one area
    worker for many areas, as the real build_areas_worker and the local batcher do); each action
    still gets its own result, log and stored outputs. If staging or the command fails, the actions
    are run one by one, so a bad item fails alone with its own log."""
    started = time.time()
    # One process for several actions cannot give a secret to only some of them: such a batch runs one by one.
    if any(a.get("secretEnv") for a in actions) or any(_stage(root, a, run_dir) for a in actions):
        return [run_action(root, a, run_dir, cwd, python, commit) for a in actions]
    log = os.path.join(root, "logs", "batch-%s.log" % actions[0]["key"])
    code = _run_logged(root, command, actions[0]["key"], run_dir, cwd, python, actions[0]["env"], log)
    commit()
    if code != 0:
        with open(log, "ab") as out:
            out.write(("\nbatch of %d exited with %d; running its actions one by one\n" % (len(actions), code)).encode())
        return [run_action(root, a, run_dir, cwd, python, commit) for a in actions]
    results = []
    for a in actions:
        own = os.path.join(root, "logs", a["key"] + ".log")
        shutil.copyfile(log, own)
        results.append(_collect(root, a, run_dir, own, started, python))
    commit()
    return results


def _write_result(root, result):
    path = os.path.join(root, "results", result["key"] + ".json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = "%s.tmp-%s" % (path, uuid.uuid4().hex)
    with open(tmp, "w") as f:
        json.dump(result, f)
    os.replace(tmp, path)


def run_request(request, root, commit=lambda: None, reload=lambda: None, claim_store=None, claim_env=None):
    """Runs every action of a request (one, or a batch of areas) in order; returns their results.

    Each action runs at most once however many calls ask for its key (`run_once`, `run_batch_once`;
    `claim_store`: default FileClaims on the volume). `claim_env(key) -> release | None` claims an
    environment build (default: claim_env_file). Expected failures are values in the results; only
    bugs raise."""
    container_start = time.time()
    actions = request.get("actions") or []
    if request.get("protocol") != PROTOCOL:
        msg = "the deployed runner speaks protocol %d, the orchestrator %s; redeploy with `modal deploy modal_app/runner.py`" % (PROTOCOL, request.get("protocol"))
        return _response(request, container_start, [_failure(a, "protocol-mismatch", msg, container_start) for a in actions])
    reload()
    scratch = tempfile.mkdtemp(prefix="build-action-")
    try:
        try:
            tree = ensure_tree(root, request["sha"])
            run_dir = os.path.join(scratch, "run")
            export_tree(tree, os.path.join(run_dir, "tree"))
            cwd = os.path.normpath(os.path.join(run_dir, "tree", request.get("projectDir") or "."))
            python = ensure_env(root, request.get("pythonEnv"), cwd, actions[0]["env"] if actions else {}, claim=claim_env, reload=reload, commit=commit)
            commit()
        except Refused as exc:
            now = time.time()
            return _response(request, container_start, [_failure(a, exc.reason, str(exc), now) for a in actions])
        setup_seconds = time.time() - container_start
        claims = claim_store or FileClaims(root)

        def run_one(action):
            return run_action(root, action, run_dir, cwd, python, commit)

        by_key = {}
        for batch in request.get("batches") or []:
            keys = set(batch["keys"])
            members = [a for a in actions if a["key"] in keys]
            run = lambda members=members, command=batch["command"]: run_batch(root, command, members, run_dir, cwd, python, commit)
            for result in run_batch_once(root, members, claims, run, run_one, reload):
                by_key[result["key"]] = result
        results = [by_key.get(a["key"]) or run_once(root, a, claims, lambda a=a: run_one(a), reload) for a in actions]
        return _response(request, container_start, results, setup_seconds)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _response(request, container_start, results, setup_seconds=0.0):
    return {
        "protocol": PROTOCOL,
        "containerStartedAt": container_start,
        "setupSeconds": round(setup_seconds, 3),
        "results": results,
    }


def main(argv):
    """`python runner_core.py digest FILE...`: prints `<digest> <size> <file>` lines (tests compare them with src/hash.ts)."""
    if len(argv) >= 2 and argv[0] == "digest":
        for path in argv[1:]:
            d, size = digest_file(path)
            print("%s %d %s" % (d, size, path))
        return 0
    print("usage: runner_core.py digest FILE...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
