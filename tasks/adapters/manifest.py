"""The local-area manifest, as the real `validate_staging` writes it (modal_app/local_area.py:574-590).

    python manifest.py --staging-dir DIR --subdir SUB [--version V]

Calls the package's `generate_manifest(DIR, SUB, version=V)` and `save_manifest(...,
DIR/SUB/manifest.json)`: sha256 and size of every states/, districts/ and cities/ H5 (national is
not in it, as in the real manifest). V defaults to the project version in ./pyproject.toml (the
real coordinator takes it from the run id, `<version>_...`). The real one also sets `run_id`;
this manifest is a cached output shared by runs, so it carries no run id (the staging manifest
written when a run is published does).

Exit status: 1 when SUB holds no area file, 2 on bad usage.
"""

import argparse
import os
import sys
import tomllib
from pathlib import Path


def main(argv):
    parser = argparse.ArgumentParser(description="Write manifest.json for the area H5s")
    parser.add_argument("--staging-dir", required=True)
    parser.add_argument("--subdir", required=True)
    parser.add_argument("--version", default=None)
    args = parser.parse_args(argv)
    sys.path.insert(0, os.getcwd())
    from policyengine_us_data.utils.manifest import generate_manifest, save_manifest

    version = args.version
    if version is None:
        with open("pyproject.toml", "rb") as f:
            version = tomllib.load(f)["project"]["version"]
    staging_dir = Path(args.staging_dir)
    manifest = generate_manifest(staging_dir, args.subdir, version=version)
    if not manifest["files"]:
        sys.stderr.write("manifest: error: no area H5 under %s\n" % (staging_dir / args.subdir))
        return 1
    path = staging_dir / args.subdir / "manifest.json"
    save_manifest(manifest, path)
    t = manifest["totals"]
    print("manifest: %s -> %s" % (", ".join("%d %s" % (t[k], k) for k in t if k != "total_size_bytes"), path))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
