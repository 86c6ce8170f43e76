"""Mirrors `policyengine_us_data.storage.download_private_prerequisites`:
module-level code (no `__main__` guard, no argparse) that downloads three
files of the private Hugging Face repository `policyengine/irs-soi-puf` into
STORAGE_FOLDER, at the repository's head (`version=None`). The twin's hub is
a directory of this tree (utils/huggingface.py), so no token is needed.

The build does not run this module: a download at "the head" cannot be
pinned. Its adapter (tasks/adapters/download_prerequisites.py) resolves the
head once and calls the same `download` with that revision.
"""

from pathlib import Path

from policyengine_us_data.utils.huggingface import download

FOLDER = Path(__file__).parent

download(
    repo="policyengine/irs-soi-puf",
    repo_filename="puf_2015.csv",
    local_folder=FOLDER,
    version=None,
)
download(
    repo="policyengine/irs-soi-puf",
    repo_filename="demographics_2015.csv",
    local_folder=FOLDER,
    version=None,
)
download(
    repo="policyengine/irs-soi-puf",
    repo_filename="np2023_d5_mid.csv",
    local_folder=FOLDER,
    version=None,
)
