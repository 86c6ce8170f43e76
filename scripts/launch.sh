# The shell half of ./build.ts: sourced by its line 2 (not run), so a start costs no extra shell,
# `$0` is build.ts and "$@" its arguments; `root` (the project directory) is set by that line.

# 1. Re-bundle dist/ when anything it is made of is newer than it: the code (src/, tasks/), the
#    bundler and the loader (scripts/), build.ts itself, the locked dependencies (package-lock.json).
#    A no-op start, the most common command, pays one `find` that stops at the first hit.
bundle="$root/dist/cli.mjs"
if [ ! -f "$bundle" ] ||
  [ -n "$(find "$root/src" "$root/tasks" "$root/scripts" "$root/build.ts" "$root/package-lock.json" -newer "$bundle" -print -quit)" ]; then
  node "$root/scripts/bundle.mjs" >&2 || exit 2
fi

# 2. Node 20 parses NODE_EXTRA_CA_CERTS at every start (~80 ms here): move it aside; the commands
#    that open TLS connections put it back (src/cli/network.ts).
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ]; then
  export BUILD_EXTRA_CA_CERTS="$NODE_EXTRA_CA_CERTS"
  unset NODE_EXTRA_CA_CERTS
fi

# 3. Run the bundle in this process.
exec node "$bundle" "$@"
