"""The private prerequisites, pinned.

The real `policyengine_us_data.storage.download_private_prerequisites` downloads
three files of the private Hugging Face repository policyengine/irs-soi-puf
into STORAGE_FOLDER at module level, at the repository's head
(`version=None`, download_private_prerequisites.py:7-24), so no cache key can
pin what it fetched. This adapter splits it in two, each calling the
package's own functions (policyengine_us_data.utils.huggingface):

    python download_prerequisites.py revision OUT
        resolves the repository's head once (HfApi().model_info(repo).sha;
        HfApi is huggingface_hub's, which that module imports; the example
        twin defines its own) and writes the revision to OUT;

    python download_prerequisites.py download REVISION_FILE
        downloads the same three files at that revision with
        `download(..., version=<revision>)` into STORAGE_FOLDER.

The token, HUGGING_FACE_TOKEN, is read from the environment by the package
(get_token), as in the real script. The working directory is the repository
root of the run's tree; it is put on sys.path so the package imports.
"""

import os
import sys

REPO = "policyengine/irs-soi-puf"
FILES = ("puf_2015.csv", "demographics_2015.csv", "np2023_d5_mid.csv")
USAGE = "usage: download_prerequisites.py revision OUT | download REVISION_FILE"


def fail(message, code=1):
    sys.stderr.write("error: %s\n" % message)
    sys.exit(code)


def resolve_revision(out):
    from policyengine_us_data.utils import huggingface

    try:
        sha = huggingface.HfApi().model_info(REPO, token=huggingface.get_token()).sha
    except Exception as exc:  # the Hub's errors: auth, network, no such repository
        fail("could not resolve the head of %s: %s" % (REPO, exc))
    with open(out, "w") as f:
        f.write(sha + "\n")
    print("%s is at %s" % (REPO, sha))


def download_at(revision_file):
    from policyengine_us_data.storage import STORAGE_FOLDER
    from policyengine_us_data.utils.huggingface import download

    with open(revision_file) as f:
        revision = f.read().strip()
    if not revision:
        fail("%s holds no revision" % revision_file)
    for name in FILES:
        try:
            download(repo=REPO, repo_filename=name, local_folder=STORAGE_FOLDER, version=revision)
        except Exception as exc:
            fail("could not download %s of %s at %s: %s" % (name, REPO, revision, exc))
        print("downloaded %s of %s at %s" % (name, REPO, revision))


def main(argv):
    sys.path.insert(0, os.getcwd())
    if len(argv) != 2 or argv[0] not in ("revision", "download"):
        fail(USAGE, 2)
    if argv[0] == "revision":
        resolve_revision(argv[1])
    else:
        download_at(argv[1])


if __name__ == "__main__":
    main(sys.argv[1:])
