"""What the adapters share: the areas' directories, their error line, reading a flag's value from a wrapped command, and
writing a file whole. Imported by its siblings as `from _adapter import ...` (the script's own
directory is first on sys.path); the build ships it beside them to remote actions, because it is
in their import closure (src/target-build.ts)."""

import os
import sys

#: An area type -> its directory of H5s (and of validation rows), as tasks/areas.ts names them.
AREA_DIRS = {"state": "states", "district": "districts", "city": "cities", "national": "national"}


def fail(message, code=1):
    """One line on stderr, prefixed with the adapter's name (fit, run_areas...), then exit."""
    name = os.path.splitext(os.path.basename(sys.argv[0]))[0]
    sys.stderr.write("%s: error: %s\n" % (name, message))
    sys.exit(code)


def flag_value(argv, name):
    """The value of `name VALUE` or `name=VALUE` in argv; None when absent."""
    for i, token in enumerate(argv):
        if token == name and i + 1 < len(argv):
            return argv[i + 1]
        if token.startswith(name + "="):
            return token[len(name) + 1:]
    return None


def write_atomic(path, data):
    """Writes bytes or text to `path` through a temporary file and a rename: never half a file."""
    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)
