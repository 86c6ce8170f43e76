"""Mirrors `policyengine_us_data.utils.manifest`: checksums, the local-area
`manifest.json` and its verification. Like the real module it has no command
line; the real pipeline calls `generate_manifest` inline (local_area.py:574-590).

The manifest covers states, districts and cities by default (national is not
in it, as in the real one). `created_at` is fixed in the example, so its
outputs stay byte-deterministic (the real one records the current UTC time).
"""

import hashlib
import json
from pathlib import Path

#: The example writes no wall-clock time into its outputs.
FIXED_CREATED_AT = "1970-01-01T00:00:00Z"


def compute_file_checksum(file_path):
    """Hex SHA-256 of a file."""
    sha256 = hashlib.sha256()
    with open(file_path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            sha256.update(chunk)
    return sha256.hexdigest()


def generate_manifest(staging_dir, subdir, version=None, categories=None):
    """{version, created_at, files: {"states/AL.h5": {sha256, size_bytes}}, totals} of
    every H5 under ``staging_dir/subdir/<category>/``."""
    if categories is None:
        categories = ["states", "districts", "cities"]
    manifest = {
        "version": version or subdir,
        "created_at": FIXED_CREATED_AT,
        "files": {},
        "totals": {cat: 0 for cat in categories},
    }
    manifest["totals"]["total_size_bytes"] = 0
    sub_path = Path(staging_dir) / subdir
    for category in categories:
        category_dir = sub_path / category
        if not category_dir.exists():
            continue
        for h5_file in sorted(category_dir.glob("*.h5")):
            size = h5_file.stat().st_size
            manifest["files"]["%s/%s" % (category, h5_file.name)] = {"sha256": compute_file_checksum(h5_file), "size_bytes": size}
            manifest["totals"][category] += 1
            manifest["totals"]["total_size_bytes"] += size
    return manifest


def verify_manifest(staging_dir, manifest, subdir=None):
    sub_path = Path(staging_dir) / (subdir or manifest["version"])
    result = {"valid": True, "missing": [], "checksum_mismatch": [], "verified": 0}
    for rel_path, info in manifest["files"].items():
        path = sub_path / rel_path
        if not path.exists():
            result["missing"].append(rel_path)
            result["valid"] = False
        elif compute_file_checksum(path) != info["sha256"]:
            result["checksum_mismatch"].append(rel_path)
            result["valid"] = False
        else:
            result["verified"] += 1
    return result


def save_manifest(manifest, output_path):
    with open(output_path, "w") as f:
        json.dump(manifest, f, indent=2)


def load_manifest(manifest_path):
    with open(manifest_path, "r") as f:
        return json.load(f)
