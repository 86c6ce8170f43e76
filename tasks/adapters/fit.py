"""One weight fit, resumable to a fixed TOTAL number of epochs, its outputs collected into the run.

    python fit.py --total-epochs TOTAL [--prefix national_] --collect-into DIR -- COMMAND...

COMMAND is the real fit (`python -m policyengine_us_data.calibration.unified_calibration
--package-path ... --output CKDIR/calibration_weights.npy --checkpoint-output CKPT ...`) without
`--epochs` or `--resume-from`: the real `--epochs` counts ADDITIONAL epochs when resuming
(unified_calibration.py:219-228, 803, 822-827), so this adapter reads the checkpoint's
`epochs_completed` with the package's own `load_fit_checkpoint` and appends
`--epochs max(0, TOTAL - done)` and, when CKPT exists, `--resume-from CKPT`. A checkpoint that
cannot be read is set aside as CKPT.unreadable and the fit starts over.

The fit writes its side files beside --output, unprefixed, and names them on stdout
(OUTPUT_PATH:, GEOGRAPHY_PATH:, ...). They stay there (the epoch log must stay beside the
checkpoint for a resumed fit to append to it); copies go to DIR as PREFIX<name>. Once collected,
the files are recorded in `fit_collected.json` beside the checkpoint: when the same action runs
again (its cache entry lost, or a remote call whose result never arrived), a fit already at TOTAL
epochs is collected again rather than resumed for 0 epochs, so its outputs keep their bytes (a
0-epoch resume would record `epochs: 0` and `resume_from` in its run config).

Exit status: the fit's when it fails; 1 when a marker or file is missing or the checkpoint does
not end at TOTAL epochs; 2 on bad usage.
"""

import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import zipfile

from _adapter import fail, flag_value

#: stdout marker -> file name in the run's artifacts (before the prefix).
COLLECTED = {
    "OUTPUT_PATH": "calibration_weights.npy",
    "GEOGRAPHY_PATH": "geography_assignment.npz",
    "BLOCKS_PATH": "stacked_blocks.npy",
    "GEO_LABELS_PATH": "geo_labels.json",
    "CONFIG_PATH": "unified_run_config.json",
    "LOG_PATH": "unified_diagnostics.csv",
    "CAL_LOG_PATH": "calibration_log.csv",
}
MARKER = re.compile(r"^([A-Z_]+_PATH):(.+)$")


def parse(argv):
    if "--" not in argv:
        fail("usage: fit.py --total-epochs TOTAL [--prefix P] --collect-into DIR -- COMMAND...", 2)
    split = argv.index("--")
    own, command = argv[:split], argv[split + 1:]
    opts = {"--total-epochs": None, "--prefix": "", "--collect-into": None}
    i = 0
    while i < len(own):
        if own[i] not in opts or i + 1 >= len(own):
            fail("unknown or incomplete option %r" % own[i], 2)
        opts[own[i]] = own[i + 1]
        i += 2
    if opts["--total-epochs"] is None or not opts["--total-epochs"].isdigit() or not opts["--collect-into"]:
        fail("--total-epochs (a whole number) and --collect-into are required", 2)
    for owned in ("--epochs", "--resume-from"):
        if flag_value(command, owned) is not None:
            fail("the command must not pass %s: this adapter derives it from the checkpoint" % owned, 2)
    checkpoint = flag_value(command, "--checkpoint-output")
    if not command or not checkpoint:
        fail("the command must name its checkpoint with --checkpoint-output PATH", 2)
    return int(opts["--total-epochs"]), opts["--prefix"], opts["--collect-into"], checkpoint, command


def epochs_done(checkpoint):
    """epochs_completed of the checkpoint, read by the package itself (torch.load in the real one)."""
    if not os.path.exists(checkpoint):
        return None
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        from policyengine_us_data.calibration.unified_calibration import load_fit_checkpoint

        return int(load_fit_checkpoint(checkpoint, device="cpu").get("epochs_completed", 0))
    except ImportError as exc:  # the environment, not the checkpoint: keep it for a fixed environment
        fail("cannot read the checkpoint %s: %s (is the fit's environment complete?)" % (checkpoint, exc))
    except (ValueError, RuntimeError, EOFError, OSError, KeyError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        os.replace(checkpoint, checkpoint + ".unreadable")
        print("fit: WARNING: checkpoint %s is unreadable (%s); set aside as .unreadable, starting over" % (checkpoint, exc), flush=True)
        return None


def copy_atomic(src, dest):
    tmp = dest + ".tmp"
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)


def collect(found, wanted, into, prefix):
    os.makedirs(into, exist_ok=True)
    for marker, name in wanted.items():
        copy_atomic(found[marker], os.path.join(into, prefix + name))


def completed_before(record, total, wanted):
    """The files a completed run of this action collected, if they are all still there."""
    try:
        with open(record) as f:
            previous = json.load(f)
    except (OSError, ValueError):
        return None
    here = os.path.dirname(record)
    found = {m: os.path.join(here, rel) for m, rel in previous.get("files", {}).items()}
    if previous.get("total") != total or any(m not in found or not os.path.isfile(found[m]) for m in wanted):
        return None
    return found


def main(argv):
    total, prefix, into, checkpoint, command = parse(argv)
    wanted = {m: n for m, n in COLLECTED.items() if m != "CAL_LOG_PATH" or flag_value(command, "--log-freq") is not None}
    record = os.path.join(os.path.dirname(os.path.abspath(checkpoint)), "fit_collected.json")
    done = epochs_done(checkpoint)
    found = completed_before(record, total, wanted) if done == total else None
    if found:
        collect(found, wanted, into, prefix)
        print("fit: this action already completed %d epochs (%s); collected its %d files again into %s" % (total, record, len(wanted), into), flush=True)
        return 0
    if os.path.exists(record):
        os.remove(record)
    remaining = max(0, total - (done or 0))
    if done is None:
        print("fit: no checkpoint at %s; running %d epochs" % (checkpoint, total), flush=True)
        argv = [*command, "--epochs", str(total)]
    else:
        print("fit: checkpoint %s at epoch %d of %d; running %d more" % (checkpoint, done, total, remaining), flush=True)
        argv = [*command, "--epochs", str(remaining), "--resume-from", checkpoint]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    found = {}
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        m = MARKER.match(line.rstrip("\n"))
        if m:
            found[m.group(1)] = m.group(2).strip()
    rc = proc.wait()
    if rc != 0:
        fail("the fit exited with %d; its checkpoint (if any) is kept at %s for the next attempt" % (rc, checkpoint), rc)
    after = epochs_done(checkpoint)
    if after != total:
        fail("the checkpoint ends at epoch %s, not at the requested %d" % (after, total))
    missing = [m for m in wanted if m not in found or not os.path.isfile(found[m])]
    if missing:
        fail("the fit did not announce (or write) %s on stdout" % ", ".join("%s:" % m for m in missing))
    collect(found, wanted, into, prefix)
    with open(record + ".tmp", "w") as f:
        json.dump({"total": total, "files": {m: os.path.relpath(found[m], os.path.dirname(record)) for m in wanted}}, f, indent=2)
    os.replace(record + ".tmp", record)
    print("fit: %d epochs in total; collected %d files into %s with prefix %r" % (total, len(wanted), into, prefix), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
