"""The build system's Modal app: one generic action runner per resource class.

Deploy once (and after every change to this directory):

    modal deploy modal_app/runner.py

Every function is a thin shell around `runner_core.run_request`: it reloads the volume, runs the
request's actions (code from the pinned SHA, inputs from the content-addressed store, outputs
stored back by digest) and commits. Nothing of the pipeline is baked into the image: the image
holds Python, git, uv and xxhash; the code comes from the git mirror on the volume at exactly
the SHA the orchestrator pinned (this fixes the real pipeline's W1).

Resource classes (tasks/ declare them; src/executors/modal-protocol.ts maps them to these names):
    cpu        run_cpu        8 CPU / 64 GiB, 14 h    (calibration package)
    data       run_data       8 CPU / 32 GiB, 8 h, non-preemptible (the prerequisites, the
                              database ETL and the dataset phases: the real data build's
                              `build_datasets` resources)
    cpu batch  run_areas      1 CPU / 16 GiB, 8 h, max 50 containers, non-preemptible
                              (area batches, LPT; one worker process per batch)
    T4 A10 A100-40GB A100-80GB H100
               run_t4 run_a10 run_a100_40gb run_a100_80gb run_h100
                              GPU + 8 CPU / 32 GiB, 8 h, preemptible, retried (the fits
                              resume from their own checkpoint under the action key)

The run's coordinator (`./build.ts pipeline EXECUTOR=modal --detach`):
    run_coordinator   2 CPU / 4 GiB, non-preemptible, 24 h per attempt (Modal's maximum), retried
                      3 times: a retry resumes the same run id (coordinator_core.py), so a run
                      may coordinate for 4 x 24 h; its own image: Node 20 + the Modal client.

Secrets: no function has one attached. An action that declares a secret variable (Target.secretEnv,
HUGGING_FACE_TOKEN) is spawned on a variant of its function with that Modal secret attached
(`with_options(secrets=[modal.Secret.from_name("huggingface-token")])`, modal_app/client.py), so
only its call's container holds it; the request names the variable, never its value.

Names: the app is BUILD_MODAL_APP (default `policyengine-us-data-build`), the volume
BUILD_MODAL_VOLUME (default `pipeline-artifacts`), read at deploy time; the orchestrator reads
the same variables.
"""

import os
import sys
import time
from pathlib import Path

import modal

sys.path.insert(0, str(Path(__file__).resolve().parent))

import coordinator_core  # noqa: E402
import runner_core  # noqa: E402

APP_NAME = os.environ.get("BUILD_MODAL_APP", "policyengine-us-data-build")
VOLUME_NAME = os.environ.get("BUILD_MODAL_VOLUME", "pipeline-artifacts")
MOUNT = "/vol"
ROOT = MOUNT + "/build"

app = modal.App(APP_NAME)
volume = modal.Volume.from_name(VOLUME_NAME, create_if_missing=True)
#: The repository's requires-python is >=3.12,<3.15; the real image (modal_app/images.py there) uses
#: 3.14. Environments are built from this interpreter, /usr/local/bin/python3.14 in every container.
PYTHON_VERSION = "3.14"
image = (
    modal.Image.debian_slim(python_version=PYTHON_VERSION)
    .apt_install("git", "make")
    .pip_install("xxhash==4.1.0", "uv==0.9.30")
    .add_local_file(Path(__file__).resolve().parent / "runner_core.py", "/root/runner_core.py")
    .env({"BUILD_IMAGE_PYTHON": "/usr/local/bin/python" + PYTHON_VERSION})
)
#: The coordinator's image: the same Python, git and uv (its local targets run here), Node from the
#: official tarball (the build system's CLI; its code comes from the volume by digest), and the
#: pinned Modal client the CLI's Modal executor uses to spawn and wait for the actions' calls.
NODE_VERSION = "20.20.2"
_HERE = Path(__file__).resolve().parent
_MODAL_PIN = next(line.strip() for line in (_HERE / "requirements.txt").read_text().splitlines() if line.startswith("modal=="))
coordinator_image = (
    modal.Image.debian_slim(python_version=PYTHON_VERSION)
    .apt_install("git", "make", "curl", "xz-utils", "ca-certificates")
    .run_commands(
        "curl -fsSL https://nodejs.org/dist/v%s/node-v%s-linux-x64.tar.xz | tar -xJ -C /usr/local --strip-components=1" % (NODE_VERSION, NODE_VERSION),
        "node --version",
    )
    .pip_install("xxhash==4.1.0", "uv==0.9.30", _MODAL_PIN)
    .env({"BUILD_IMAGE_PYTHON": "/usr/local/bin/python" + PYTHON_VERSION})
    .add_local_file(_HERE / "runner_core.py", "/root/runner_core.py")
    .add_local_file(_HERE / "coordinator_core.py", "/root/coordinator_core.py")
)
#: Environment-build claims. A Volume has no atomic create across containers (each commits its
#: own view, last writer wins), so the claim is a modal.Dict entry put with skip_if_exists.
env_claims = modal.Dict.from_name(APP_NAME + "-env-claims", create_if_missing=True)

HOURS = 3600
_COMMON = dict(image=image, volumes={MOUNT: volume})
#: Preempted or crashed containers are retried; the runner itself never raises for a failed
#: command (that is a value in its result), so retries only cover lost containers.
_RETRIES = modal.Retries(max_retries=2, initial_delay=30.0, backoff_coefficient=2.0)
_GPU = dict(_COMMON, cpu=8, memory=32 * 1024, timeout=8 * HOURS, retries=_RETRIES)


#: Which call runs each action key (runner_core.run_once). A Volume cannot arbitrate that: each
#: container writes its own view and commit() lets the last writer win. A Dict's
#: `put(..., skip_if_exists=True)` is an atomic create across containers.
claims = modal.Dict.from_name(os.environ.get("BUILD_MODAL_CLAIMS", "pipeline-action-claims"), create_if_missing=True)


class DictClaims:
    """runner_core's claim store on a modal.Dict; the heartbeat is the value's `beat` time."""

    def take(self, key, owner):
        return claims.put(key, dict(owner, beat=time.time()), skip_if_exists=True)

    def holder(self, key):
        owner = claims.get(key)
        return None if owner is None else dict(owner, age=time.time() - owner.get("beat", 0))

    def refresh(self, key):
        owner = claims.get(key)
        if owner is not None:
            claims.put(key, dict(owner, beat=time.time()))

    def release(self, key, owner):
        held = claims.get(key)
        if held is not None and held.get("id") == owner["id"]:
            claims.pop(key)

    def break_stale(self, key, owner_id):
        # No compare-and-delete on a Dict: re-read just before popping narrows the race to a
        # claim taken in between, which then runs beside at most one other (the old behaviour).
        held = claims.get(key)
        if held is not None and held.get("id") == owner_id:
            claims.pop(key)


def _claim_env(key):
    """claim(key) -> release | None over env_claims; a claim older than the stale limit is taken over."""
    now = time.time()
    if not env_claims.put(key, now, skip_if_exists=True):
        held = env_claims.get(key, None)
        if held is not None and now - held < runner_core.ENV_CLAIM_STALE_SECONDS:
            return None
        env_claims.put(key, now)  # stale (its holder died) or released in between
    return lambda: env_claims.pop(key, None)


def _run(request):
    return runner_core.run_request(request, ROOT, commit=volume.commit, reload=volume.reload, claim_store=DictClaims(), claim_env=_claim_env)


@app.function(**_COMMON, cpu=8, memory=64 * 1024, timeout=14 * HOURS, retries=_RETRIES, nonpreemptible=True)
def run_cpu(request: dict) -> dict:
    return _run(request)


@app.function(**_COMMON, cpu=8, memory=32 * 1024, timeout=8 * HOURS, retries=_RETRIES, nonpreemptible=True)
def run_data(request: dict) -> dict:
    """The data build's actions (prerequisites, database ETL, dataset phases), each its own call,
    with the real data build's resources (data_build.py `build_datasets`)."""
    return _run(request)


@app.function(**_COMMON, cpu=1, memory=16 * 1024, timeout=8 * HOURS, max_containers=50, retries=_RETRIES, nonpreemptible=True)
def run_areas(request: dict) -> dict:
    """Area actions (one LPT partition) in one container: each batch group of them as one worker
    process (runner_core.run_batch); non-preemptible, as the real build_areas_worker."""
    return _run(request)


@app.function(**_GPU, gpu="T4")
def run_t4(request: dict) -> dict:
    return _run(request)


@app.function(**_GPU, gpu="A10")
def run_a10(request: dict) -> dict:
    return _run(request)


@app.function(**_GPU, gpu="A100-40GB")
def run_a100_40gb(request: dict) -> dict:
    return _run(request)


@app.function(**_GPU, gpu="A100-80GB")
def run_a100_80gb(request: dict) -> dict:
    return _run(request)


@app.function(**_GPU, gpu="H100")
def run_h100(request: dict) -> dict:
    return _run(request)


#: Modal allows at most 24 h per attempt; the retries (each resuming the run) give the 48 h and more.
_COORDINATOR_RETRIES = modal.Retries(max_retries=3, initial_delay=10.0, backoff_coefficient=1.0)


@app.function(image=coordinator_image, volumes={MOUNT: volume}, cpu=2, memory=4 * 1024, timeout=24 * HOURS, retries=_COORDINATOR_RETRIES, nonpreemptible=True)
def run_coordinator(request: dict) -> dict:
    """The run's coordinator: the build system's CLI from `buildsys/<digest>` (checked), the volume's
    `state/` as its cache, one live coordinator per run (the claim is a modal.Dict entry)."""
    return coordinator_core.run_coordinator(
        request,
        ROOT,
        node="/usr/local/bin/node",
        commit=volume.commit,
        reload=volume.reload,
        claims=DictClaims(),
        extra_env={"BUILD_MODAL_APP": APP_NAME, "BUILD_MODAL_VOLUME": VOLUME_NAME, "BUILD_MODAL_PYTHON": "/usr/local/bin/python" + PYTHON_VERSION},
    )
