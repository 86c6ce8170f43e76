"""Content digest of HDF5 files, for early cutoff (src/caching/content-digest.ts runs it).

HDF5 writers embed the time in their bytes (PyTables, and so pandas' HDFStore, put time.time()
in every object header), so two writes of the same data differ. This digest walks the file's
logical content instead and ignores everything else.

Hashed, in this order, each object by its sorted path (links visited by sorted name):
  - groups: path and attributes;
  - datasets: path, dtype, shape, the values in C order, and attributes;
  - committed datatypes: path and dtype;
  - soft and external links: path and target;
  - attributes: sorted by name, each its name, dtype and value (PyTables/pandas attributes such
    as CLASS, VERSION, pandas_type, pandas_version are content and kept).
Ignored: object-header times (modification, change, access, birth), object addresses and file
layout (superblock, B-trees, heaps, free space, what "a"-mode rewrites leave behind), chunking,
compression and filters, fill values, and link creation order. An object reference is hashed as
the path it points to.

Usage: python hdf5_digest.py FILE...  -> one 32-hex-digit digest per line (BLAKE2b-128).
"""

import hashlib
import struct
import sys

try:
    import h5py
    import numpy as np
except ImportError as exc:  # the environment lacks h5py: say so in one line
    print("hdf5_digest: %s; the content digest of HDF5 outputs needs h5py in the target's Python environment" % exc, file=sys.stderr)
    sys.exit(3)

CHUNK_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 256


def feed(h, tag, data=b""):
    h.update(tag)
    h.update(struct.pack("<Q", len(data)))
    h.update(data)


def feed_value(h, f, value):
    if isinstance(value, h5py.Reference):
        feed(h, b"ref", (f[value].name if value else "").encode())
    elif isinstance(value, h5py.Empty):
        feed(h, b"empty", str(value.dtype).encode())
    elif isinstance(value, bytes):
        feed(h, b"bytes", value)
    elif isinstance(value, str):
        feed(h, b"str", value.encode())
    elif isinstance(value, np.ndarray):
        feed(h, b"array", repr((value.dtype.descr, value.shape)).encode())
        if value.dtype.hasobject:
            for item in value.flat:
                feed_value(h, f, item)
        else:
            feed(h, b"data", np.ascontiguousarray(value).tobytes())
    elif isinstance(value, np.generic):
        feed_value(h, f, np.asarray(value))
    else:
        feed(h, b"other", repr(value).encode())


def feed_attrs(h, f, obj):
    for name in sorted(obj.attrs.keys()):
        feed(h, b"attr", name.encode())
        feed_value(h, f, obj.attrs[name])


def feed_dataset(h, f, ds):
    feed(h, b"dtype", repr((ds.dtype.str, ds.dtype.descr)).encode())
    feed(h, b"shape", repr(ds.shape).encode())
    if ds.shape is None or ds.shape == () or ds.size == 0:
        feed_value(h, f, ds[()])
    else:
        row = max(1, ds.dtype.itemsize * (ds.size // ds.shape[0]))
        step = max(1, CHUNK_BYTES // row)
        for start in range(0, ds.shape[0], step):
            feed_value(h, f, ds[start : start + step])
    feed_attrs(h, f, ds)


def walk(h, f, group, depth):
    if depth > MAX_DEPTH:
        raise RuntimeError("groups nested deeper than %d (a cycle of hard links?)" % MAX_DEPTH)
    for name in sorted(group.keys()):
        link = group.get(name, getlink=True)
        path = (group.name.rstrip("/") + "/" + name).encode()
        if isinstance(link, h5py.SoftLink):
            feed(h, b"softlink", path + b"\0" + link.path.encode())
            continue
        if isinstance(link, h5py.ExternalLink):
            feed(h, b"extlink", path + b"\0" + link.filename.encode() + b"\0" + link.path.encode())
            continue
        obj = group[name]
        if isinstance(obj, h5py.Group):
            feed(h, b"group", path)
            feed_attrs(h, f, obj)
            walk(h, f, obj, depth + 1)
        elif isinstance(obj, h5py.Dataset):
            feed(h, b"dataset", path)
            feed_dataset(h, f, obj)
        else:
            feed(h, b"datatype", path + b"\0" + repr(obj.dtype.descr).encode())


def digest(path):
    h = hashlib.blake2b(digest_size=16, person=b"hdf5-content-v1")
    with h5py.File(path, "r") as f:
        feed(h, b"group", b"/")
        feed_attrs(h, f, f)
        walk(h, f, f, 0)
    return h.hexdigest()


def main(paths):
    for path in paths:
        try:
            print(digest(path))
        except Exception as exc:  # one line for the build, whatever h5py raised
            print("hdf5_digest: %s: %s: %s" % (path, type(exc).__name__, exc), file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
