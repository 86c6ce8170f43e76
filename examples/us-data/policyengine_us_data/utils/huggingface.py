"""Mirrors `policyengine_us_data.utils.huggingface` (`get_token`, `download`)
with the Hugging Face Hub replaced by a directory of this tree:
`fixtures/huggingface/<namespace>/<repo>/<file>`. Offline and token-free.

`HfApi` stands in for the `huggingface_hub.HfApi` that the real module
imports: `HfApi().model_info(repo).sha` is the repository's head revision,
here a digest of the fixture repository's files (editing a fixture file is a
new revision, as a push is on the Hub). `download(..., version=<sha>)`
refuses a revision the fixture is not at, as the Hub would serve other bytes.
"""

import hashlib
import os
import shutil
from pathlib import Path

HUB = Path(__file__).resolve().parents[2] / "fixtures" / "huggingface"


def get_token():
    """The HF token from the environment, or None (the fixture hub needs none)."""
    return os.environ.get("HUGGING_FACE_TOKEN")


def _repository(repo):
    path = HUB / repo
    if not path.is_dir():
        raise FileNotFoundError("no fixture repository %s under %s" % (repo, HUB))
    return path


def _revision(repo):
    h = hashlib.sha1()
    for f in sorted(p for p in _repository(repo).rglob("*") if p.is_file()):
        h.update(f.relative_to(HUB / repo).as_posix().encode() + b"\0")
        h.update(hashlib.sha1(f.read_bytes()).digest())
    return h.hexdigest()


class ModelInfo:
    def __init__(self, sha):
        self.sha = sha


class HfApi:
    """The part of huggingface_hub.HfApi the build uses."""

    def model_info(self, repo_id, revision=None, token=None):
        return ModelInfo(_revision(repo_id))


def download(repo, repo_filename, local_folder, version=None):
    head = _revision(repo)
    if version is not None and version != head:
        raise ValueError("%s has no revision %s here (the fixture hub is at %s)" % (repo, version, head))
    source = _repository(repo) / repo_filename
    if not source.is_file():
        raise FileNotFoundError("%s has no file %s" % (repo, repo_filename))
    target = Path(local_folder) / repo_filename
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)
