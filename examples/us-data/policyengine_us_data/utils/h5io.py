"""Deterministic HDF5 / NPZ I/O for the example (mirrors the "time period
arrays" layout of policyengine-core datasets: one group per variable, one
dataset per period, e.g. ``/employment_income/2024``).

Byte-for-byte determinism:
- the file, the root group and every group are created with object time
  tracking disabled (``H5Pset_obj_track_times(false)``; h5py's high-level
  ``File`` / ``create_group`` cannot do this, so the low-level API is used),
- every dataset is created with ``track_times=False``,
- ``libver=('latest', 'latest')``, no compression, variables written in
  sorted order,
- ``.npz`` files are written by hand with a fixed zip timestamp
  (``numpy.savez`` stamps the current local time into the zip).

The root carries ``time_period`` and ``variable_entities`` (a JSON object
mapping every variable to ``household`` / ``person``; one attribute instead of
one per group keeps writing a small file fast).
"""

import io
import json
import os
import zipfile

import h5py
import numpy as np
from h5py import h5f, h5g, h5p

from policyengine_us_data.utils.io import atomic_path, UsageError


def _create_file(path):
    fcpl = h5p.create(h5p.FILE_CREATE)
    fcpl.set_obj_track_times(False)
    fapl = h5p.create(h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5f.LIBVER_LATEST, h5f.LIBVER_LATEST)
    fid = h5f.create(os.fsencode(path), h5f.ACC_TRUNC, fcpl=fcpl, fapl=fapl)
    return h5py.File(fid)


def _gcpl():
    gcpl = h5p.create(h5p.GROUP_CREATE)
    gcpl.set_obj_track_times(False)
    return gcpl


def _create_group(parent, name, gcpl):
    gid = h5g.create(parent.id, name.encode("utf-8"), lcpl=None, gcpl=gcpl)
    return h5py.Group(gid)


def write_dataset(path, variables, entities, period, attrs=None):
    """Write ``{name: array}`` as ``/name/period`` atomically.

    ``entities`` maps every variable name to ``household`` or ``person``.
    """
    period = str(period)
    with atomic_path(path) as tmp:
        f = _create_file(tmp)
        try:
            f.attrs["time_period"] = np.int64(int(period))
            f.attrs["variable_entities"] = json.dumps(
                {name: entities[name] for name in variables}, sort_keys=True
            )
            for key in sorted(attrs or {}):
                f.attrs[key] = attrs[key]
            gcpl = _gcpl()
            for name in sorted(variables):
                arr = np.ascontiguousarray(variables[name])
                g = _create_group(f, name, gcpl)
                g.create_dataset(period, data=arr, track_times=False)
        finally:
            f.close()


def read_dataset(path, names=None):
    """Return ``(variables, entities, period)`` from a time-period-array file."""
    if not os.path.isfile(path):
        raise UsageError("dataset not found: %s" % path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise UsageError("cannot read HDF5 dataset %s: %s" % (path, exc))
    with f:
        if "time_period" not in f.attrs or "variable_entities" not in f.attrs:
            raise UsageError("%s is not an example dataset (no time_period/variable_entities)" % path)
        period = str(int(f.attrs["time_period"]))
        raw = f.attrs["variable_entities"]
        all_entities = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        variables, entities = {}, {}
        for name in sorted(f.keys()) if names is None else names:
            if name not in f:
                raise UsageError("%s has no variable %r" % (path, name))
            variables[name] = f[name][period][()]
            if name not in all_entities:
                raise UsageError("%s: variable %r has no entity" % (path, name))
            entities[name] = all_entities[name]
    return variables, entities, period


def npz_bytes(arrays):
    """Deterministic ``.npz`` payload (np.load compatible) for ``{name: array}``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(
                member, np.asanyarray(arrays[name]), allow_pickle=False
            )
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 3
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue())
    return buf.getvalue()


def write_npz(path, arrays):
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(npz_bytes(arrays))


def write_npy(path, array):
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.lib.format.write_array(f, np.asanyarray(array), allow_pickle=False)


def household_person_index(household_ids, person_household_ids):
    """For persons sorted by household: ``(start, count)`` per household row."""
    order_ok = np.all(np.diff(person_household_ids) >= 0)
    if not order_ok:
        raise UsageError("persons are not grouped by household")
    start = np.searchsorted(person_household_ids, household_ids, side="left")
    stop = np.searchsorted(person_household_ids, household_ids, side="right")
    return start, stop - start
