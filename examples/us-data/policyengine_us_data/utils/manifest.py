"""Mirrors `policyengine_us_data.utils.manifest` (`generate_manifest`, run by
`validate_staging`): sha256 + size of every local-area H5 under a run
directory, with per-kind totals.

    python -m policyengine_us_data.utils.manifest --h5-dir DIR --run-id R \
        --version V --output manifest.json

Output (sorted keys, no created_at so it is deterministic):
{"files": {"states/AL.h5": {"sha256", "size_bytes"}, ...}, "run_id",
 "totals": {"cities", "districts", "national", "states", "total_size_bytes"},
 "version"}. Unlike the real manifest, national/US.h5 is included.

`--verify` checks an existing manifest instead (mirrors `verify_manifest`):
prints {valid, missing, checksum_mismatch, verified} and exits 1 if invalid.
"""

import argparse
import json
import os

from policyengine_us_data.utils.io import UsageError, canonical_json, run_main, sha256_file, write_json

KINDS = (("states", "states"), ("districts", "districts"), ("cities", "cities"), ("national", "national"))


def generate_manifest(h5_dir, run_id, version):
    if not os.path.isdir(h5_dir):
        raise UsageError("h5 directory not found: %s" % h5_dir)
    files = {}
    totals = {key: 0 for key, _ in KINDS}
    total_size = 0
    for key, sub in KINDS:
        folder = os.path.join(h5_dir, sub)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if not name.endswith(".h5") or not os.path.isfile(path):
                continue
            size = os.path.getsize(path)
            files["%s/%s" % (sub, name)] = {"sha256": sha256_file(path), "size_bytes": size}
            totals[key] += 1
            total_size += size
    totals["total_size_bytes"] = total_size
    return {"files": files, "run_id": run_id, "totals": totals, "version": version}


def verify_manifest(h5_dir, manifest):
    missing, mismatch, verified = [], [], 0
    for rel, info in sorted(manifest.get("files", {}).items()):
        path = os.path.join(h5_dir, rel)
        if not os.path.isfile(path):
            missing.append(rel)
        elif sha256_file(path) != info["sha256"]:
            mismatch.append(rel)
        else:
            verified += 1
    return {"valid": not missing and not mismatch, "missing": missing, "checksum_mismatch": mismatch, "verified": verified}


def main(argv=None):
    p = argparse.ArgumentParser(description="Generate (or verify) the local-area manifest.json")
    p.add_argument("--h5-dir", required=True)
    p.add_argument("--run-id", default="")
    p.add_argument("--version", default=None, help="default: pyproject version")
    p.add_argument("--output", default=None, help="default: H5_DIR/manifest.json")
    p.add_argument("--verify", default=None, metavar="MANIFEST", help="verify an existing manifest")
    args = p.parse_args(argv)
    if args.verify:
        try:
            with open(args.verify) as f:
                manifest = json.load(f)
        except (OSError, ValueError) as exc:
            raise UsageError("cannot read manifest %s: %s" % (args.verify, exc))
        result = verify_manifest(args.h5_dir, manifest)
        print(canonical_json(result, indent=None), end="")
        return 0 if result["valid"] else 1
    version = args.version
    if version is None:
        from policyengine_us_data.utils.io import package_version

        version = package_version()
    manifest = generate_manifest(args.h5_dir, args.run_id, version)
    output = args.output or os.path.join(args.h5_dir, "manifest.json")
    write_json(output, manifest)
    t = manifest["totals"]
    print(
        "manifest: %d states, %d districts, %d cities, %d national, %d bytes -> %s"
        % (t["states"], t["districts"], t["cities"], t["national"], t["total_size_bytes"], output)
    )
    return 0


if __name__ == "__main__":
    run_main(main)
