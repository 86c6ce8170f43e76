"""The orchestrator's Modal client: spawns runner calls and waits for them (real Modal only).

src/executors/modal-transport.ts runs it with the pinned `modal` package (modal_app/requirements.txt)
as `python client.py <op>`, one JSON document on stdin and one on stdout. Volume transfers do not
go through here: they are plain `modal volume put/get/ls` command lines (src/executors/modal-cli.ts).

Ops:
    check     {app, functions, secrets}   -> {ok: true}                  token present, app deployed, secrets exist
    spawn     {app, calls: [{function, request, secrets}]} -> {callIds: [...]}
                                          one `.spawn()` each; a call's Modal secrets (names) are
                                          attached to its function variant alone (`with_options`)
    wait      {ids, timeout}              -> {states: {id: state}}       `FunctionCall.get(timeout)`
    cancel    {ids}                       -> {ok: true}                  `FunctionCall.cancel(terminate_containers=True)`
    selfcheck {}                          -> {version, ...}              the API this file relies on

A state is {"state": "running"}, {"state": "done", "value": <runner result>} or
{"state": "failed", "reason": ..., "message": ...}. Any op may instead answer
{"error": {"reason": ..., "message": ...}}; reasons are the executor's failure codes.
"""

import json
import sys
from concurrent.futures import ThreadPoolExecutor

DEPLOY_HINT = "deploy the runner once with `modal deploy modal_app/runner.py`"


def classify(exc):
    """A Modal exception as (reason, message): the failures the executor reports."""
    import modal.exception as e

    name = type(exc).__name__
    text = str(exc) or name
    if isinstance(exc, e.AuthError):
        return "modal-auth", "Modal refused the token (%s); create one with `modal token new`" % text
    if isinstance(exc, e.NotFoundError):
        return "modal-app-missing", "%s; %s" % (text, DEPLOY_HINT)
    if isinstance(exc, e.ResourceExhaustedError):
        return "modal-quota", "Modal quota or rate limit reached: %s" % text
    if isinstance(exc, e.FunctionTimeoutError):
        return "remote-timeout", "the Modal function hit its timeout: %s" % text
    if isinstance(exc, e.InternalFailure):
        return "remote-preempted", "the Modal container was lost (preempted or crashed) after its retries: %s" % text
    if isinstance(exc, e.OutputExpiredError):
        return "call-expired", "the call's result has expired on Modal: %s" % text
    if isinstance(exc, (e.ConnectionError, ConnectionError, OSError)):
        return "modal-unreachable", "cannot reach Modal: %s" % text
    return "remote-error", "%s: %s" % (name, text)


def token_configured():
    from modal.config import config

    return bool(config.get("token_id")) and bool(config.get("token_secret"))


def in_container():
    """Inside a Modal container (the coordinator) the client is authenticated by the container itself."""
    import os

    return os.environ.get("MODAL_IS_REMOTE") == "1"


def op_check(req):
    import modal
    import modal.exception

    if not in_container() and not token_configured():
        return {"error": {"reason": "modal-auth-missing", "message": "no Modal token: run `modal token new` (or set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET)"}}
    for fn in req["functions"]:
        modal.Function.from_name(req["app"], fn).hydrate()
    for need in req.get("secrets") or []:
        try:
            modal.Secret.from_name(need["secret"]).hydrate()
        except modal.exception.NotFoundError:
            message = "the Modal secret %s (%s, for the actions that declare it) does not exist; %s" % (need["secret"], need["variable"], need["hint"])
            return {"error": {"reason": "modal-secret-missing", "message": message}}
    return {"ok": True}


def _function(app, call):
    """The deployed function of a call; with the call's Modal secrets attached when it names any,
    a variant with its own containers, so no other call's container holds them."""
    import modal

    fn = modal.Function.from_name(app, call["function"])
    secrets = call.get("secrets") or []
    return fn.with_options(secrets=[modal.Secret.from_name(name) for name in secrets]) if secrets else fn


def op_spawn(req):
    ids = []
    for call in req["calls"]:
        fc = _function(req["app"], call).spawn(call["request"])
        ids.append(fc.object_id)
    return {"callIds": ids}


def _state(call_id, timeout):
    import modal

    try:
        return {"state": "done", "value": modal.FunctionCall.from_id(call_id).get(timeout=timeout)}
    except TimeoutError:
        return {"state": "running"}
    except Exception as exc:  # noqa: BLE001 - every Modal failure becomes a value
        import modal.exception as e

        if isinstance(exc, e.TimeoutError) and not isinstance(exc, e.FunctionTimeoutError):
            return {"state": "running"}
        if "cancel" in str(exc).lower() or "terminated" in str(exc).lower():
            return {"state": "failed", "reason": "call-cancelled", "message": "the call was cancelled: %s" % exc}
        reason, message = classify(exc)
        return {"state": "failed", "reason": reason, "message": message}


def op_wait(req):
    ids = list(req["ids"])
    timeout = float(req.get("timeout", 30))
    with ThreadPoolExecutor(max_workers=min(16, max(1, len(ids)))) as pool:
        states = list(pool.map(lambda i: _state(i, timeout), ids))
    return {"states": dict(zip(ids, states))}


def op_cancel(req):
    import modal

    for call_id in req["ids"]:
        modal.FunctionCall.from_id(call_id).cancel(terminate_containers=True)
    return {"ok": True}


def op_selfcheck(_req):
    """Fails loudly if the installed `modal` lacks anything this client or the CLI lines use."""
    import modal
    import modal.exception as e
    from modal.cli.entry_point import entrypoint_cli

    used = {
        "modal.Function.from_name": modal.Function.from_name,
        "modal.Function.spawn": modal.Function.spawn,
        "modal.Function.hydrate": modal.Function.hydrate,
        "modal.Function.with_options": modal.Function.with_options,
        "modal.Secret.from_name": modal.Secret.from_name,
        "modal.Secret.hydrate": modal.Secret.hydrate,
        "modal.FunctionCall.from_id": modal.FunctionCall.from_id,
        "modal.FunctionCall.get": modal.FunctionCall.get,
        "modal.FunctionCall.cancel": modal.FunctionCall.cancel,
        "modal.FunctionCall.object_id": modal.FunctionCall.object_id,
    }
    for name in ["AuthError", "NotFoundError", "ResourceExhaustedError", "FunctionTimeoutError", "InternalFailure", "OutputExpiredError", "ConnectionError", "TimeoutError"]:
        used["modal.exception." + name] = getattr(e, name)
    return {"version": modal.__version__, "checked": sorted(used), "cli": entrypoint_cli.name}


OPS = {"check": op_check, "spawn": op_spawn, "wait": op_wait, "cancel": op_cancel, "selfcheck": op_selfcheck}


def main(argv):
    if len(argv) != 1 or argv[0] not in OPS:
        print("usage: client.py %s < request.json" % "|".join(OPS), file=sys.stderr)
        return 2
    req = json.load(sys.stdin) if argv[0] != "selfcheck" else {}
    try:
        out = OPS[argv[0]](req)
    except Exception as exc:  # noqa: BLE001
        reason, message = classify(exc)
        out = {"error": {"reason": reason, "message": message}}
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
