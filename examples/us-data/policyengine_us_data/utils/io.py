"""Small stdlib-only helpers shared by every example module: atomic writes,
hashing, canonical JSON, and a uniform "fail with a clear message" exit.

No third-party imports here (startup time matters for the area worker).
"""

import contextlib
import hashlib
import json
import os
import sys


class UsageError(Exception):
    """Bad input: reported as `error: ...` on stderr with exit status 2."""


def fail(message, code=2):
    sys.stderr.write("error: %s\n" % (message,))
    sys.exit(code)


def run_main(func, argv=None):
    """Run ``func(argv)`` turning UsageError / missing files into clean exits."""
    try:
        rc = func(argv)
    except UsageError as exc:
        fail(str(exc))
    except FileNotFoundError as exc:
        fail("file not found: %s" % (exc.filename or exc,))
    sys.exit(rc or 0)


def example_knob(name, default, minimum):
    """A size knob of the twin, from its own environment variable (the real
    scripts have no such knob and no flags): EXAMPLE_HOUSEHOLDS, EXAMPLE_SEED."""
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise UsageError("%s=%s is not a whole number" % (name, raw))
    if value < minimum:
        raise UsageError("%s must be >= %d, got %d" % (name, minimum, value))
    return value


def example_households():
    return example_knob("EXAMPLE_HOUSEHOLDS", 2000, 1)


def example_seed():
    return example_knob("EXAMPLE_SEED", 0, 0)


def require_file(path, what):
    if not path:
        raise UsageError("%s path is required" % what)
    if not os.path.isfile(path):
        raise UsageError("%s not found: %s" % (what, path))
    return path


def ensure_parent(path):
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)


@contextlib.contextmanager
def atomic_path(path):
    """Yield ``<path>.tmp``; on success os.replace it onto ``path``."""
    ensure_parent(path)
    tmp = path + ".tmp"
    if os.path.exists(tmp):
        os.remove(tmp)
    try:
        yield tmp
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    os.replace(tmp, path)


def atomic_write_bytes(path, data):
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def atomic_write_text(path, text):
    atomic_write_bytes(path, text.encode("utf-8"))


def canonical_json(obj, indent=2):
    return json.dumps(obj, indent=indent, sort_keys=True, allow_nan=False) + "\n"


def write_json(path, obj):
    atomic_write_text(path, canonical_json(obj))


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def package_version():
    """Version from examples/us-data/pyproject.toml (the single source)."""
    here = os.path.dirname(os.path.abspath(__file__))
    pyproject = os.path.join(here, "..", "..", "pyproject.toml")
    try:
        with open(pyproject, "rb") as f:
            import tomllib

            return tomllib.load(f)["project"]["version"]
    except (OSError, KeyError, ValueError):
        return None
