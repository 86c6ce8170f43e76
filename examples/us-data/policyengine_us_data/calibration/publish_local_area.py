"""Mirrors `policyengine_us_data.calibration.publish_local_area` (and the
geography loader of `calibration/local_h5/geography_loader.py`): district
friendly names, the calibration geography of a fit, and `build_h5`, which
writes one local-area HDF5 from the clone-level weights.

An area file holds every clone column assigned to the area with a nonzero
weight: household arrays (household_weight = calibrated weight, the clone's
state and district, the state income tax recomputed for that state) and the
members of those households, in column order.
"""

import os

from policyengine_us_data.calibration.calibration_utils import STATE_CODES

AT_LARGE_DISTRICTS = {0, 98}
GEOGRAPHY_FILENAME = "geography_assignment.npz"
LEGACY_BLOCKS_FILENAME = "stacked_blocks.npy"
CALIBRATION_WEIGHTS_SUFFIX = "calibration_weights.npy"


def get_district_friendly_name(cd_geoid):
    """Convert GEOID to friendly name (e.g. '0101' -> 'AL-01'); at-large 00/98 -> 01."""
    cd_int = int(cd_geoid)
    state_fips = cd_int // 100
    district_num = cd_int % 100
    if district_num in AT_LARGE_DISTRICTS:
        district_num = 1
    state_code = STATE_CODES.get(state_fips, str(state_fips))
    return "%s-%02d" % (state_code, district_num)


class GeographyAssignment:
    """The clone-level geography of a fit (column c = clone c // n_records of record c % n_records)."""

    def __init__(self, block_geoid, cd_geoid, county_fips, state_fips, n_records, n_clones):
        self.block_geoid = block_geoid
        self.cd_geoid = cd_geoid
        self.county_fips = county_fips
        self.state_fips = state_fips
        self.n_records = int(n_records)
        self.n_clones = int(n_clones)


def synthetic_blocks(cd_geoid):
    """The example has no census blocks: a 15-digit id whose first 4 digits are the district GEOID."""
    import numpy as np

    return np.array(["%04d%011d" % (int(cd), 0) for cd in cd_geoid], dtype="U15")


def geography_from_districts(cd_geoid, n_records, n_clones):
    import numpy as np

    cd = np.asarray(cd_geoid, dtype=np.int64)
    blocks = synthetic_blocks(cd)
    return GeographyAssignment(
        block_geoid=blocks,
        cd_geoid=np.array([str(int(c)) for c in cd], dtype=str),
        county_fips=np.array([b[:5] for b in blocks], dtype="U5"),
        state_fips=(cd // 100).astype(np.int32),
        n_records=n_records,
        n_clones=n_clones,
    )


def save_geography(geography, path):
    """`geography_assignment.npz` with the real keys (written without a zip timestamp)."""
    import numpy as np

    from policyengine_us_data.utils.h5io import write_npz

    write_npz(
        path,
        {
            "block_geoid": geography.block_geoid,
            "cd_geoid": geography.cd_geoid,
            "county_fips": geography.county_fips,
            "state_fips": geography.state_fips,
            "n_records": np.array([geography.n_records]),
            "n_clones": np.array([geography.n_clones]),
        },
    )


def load_geography(path):
    import numpy as np

    with np.load(path, allow_pickle=False) as z:
        return GeographyAssignment(
            block_geoid=z["block_geoid"],
            cd_geoid=z["cd_geoid"],
            county_fips=z["county_fips"],
            state_fips=z["state_fips"],
            n_records=int(z["n_records"][0]),
            n_clones=int(z["n_clones"][0]),
        )


def _sibling(weights_path, name):
    base = os.path.basename(weights_path)
    prefix = base[: -len(CALIBRATION_WEIGHTS_SUFFIX)] if base.endswith(CALIBRATION_WEIGHTS_SUFFIX) else ""
    return os.path.join(os.path.dirname(weights_path), prefix + name)


def load_calibration_geography(weights_path, n_records, n_clones=None, geography_path=None, calibration_package_path=None):
    """The geography of a fit, in the real resolution order: the saved geography
    (`--geography-path`, else the `<prefix>geography_assignment.npz` beside the
    weights), then the calibration package, then the legacy blocks file."""
    import numpy as np

    candidates = [p for p in (geography_path, _sibling(weights_path, GEOGRAPHY_FILENAME)) if p]
    for path in candidates:
        if os.path.exists(path):
            geography = load_geography(path)
            if geography.n_records != n_records:
                raise ValueError("Geography artifact %s has n_records=%d, expected %d" % (path, geography.n_records, n_records))
            if n_clones is not None and geography.n_clones != n_clones:
                raise ValueError("Geography artifact %s has n_clones=%d, expected %d" % (path, geography.n_clones, n_clones))
            return geography
    if calibration_package_path and os.path.exists(calibration_package_path):
        import pickle

        with open(calibration_package_path, "rb") as f:
            package = pickle.load(f)
        cd = package.get("cd_geoid")
        if cd is None or len(cd) == 0 or len(cd) % n_records:
            raise ValueError("Calibration package %s does not contain geography arrays" % calibration_package_path)
        inferred = len(cd) // n_records
        if n_clones is not None and inferred != n_clones:
            raise ValueError("Calibration package %s implies n_clones=%d, expected %d" % (calibration_package_path, inferred, n_clones))
        return geography_from_districts(cd, n_records, inferred)
    for path in (_sibling(weights_path, LEGACY_BLOCKS_FILENAME), os.path.join(os.path.dirname(weights_path), LEGACY_BLOCKS_FILENAME)):
        if os.path.exists(path):
            blocks = np.load(path, allow_pickle=False)
            cd = np.array([int(b[:4]) for b in blocks], dtype=np.int64)
            return geography_from_districts(cd, n_records, len(cd) // n_records)
    raise ValueError("No geography found for %s (pass --geography-path or --calibration-package-path)" % weights_path)


_DATASETS = {}
#: The arrays of the file build_h5 wrote last, so the worker validates it without reading it back.
_LAST_WRITTEN = {}


def written_arrays(path):
    """``(variables, entities)`` of the file build_h5 just wrote at ``path``, else None."""
    return _LAST_WRITTEN.get(str(path))


def _dataset(path):
    """The source dataset and its household -> persons index, read once per process."""
    if path not in _DATASETS:
        from policyengine_us_data.utils.h5io import household_person_index, read_dataset

        data, entities, period = read_dataset(path)
        index = household_person_index(data["household_id"], data["person_household_id"])
        _DATASETS[path] = (data, entities, period, index)
    return _DATASETS[path]


def build_h5(weights, geography, dataset_path, output_path, cd_subset=None, county_fips_filter=None, takeup_filter=None):
    """Write the area of the columns whose district is in ``cd_subset`` (all columns when None).

    ``county_fips_filter`` is not supported: the example has no county geography.
    ``takeup_filter`` is accepted for parity (the example has no take-up draws).
    Returns the output path.
    """
    import numpy as np

    from policyengine_us_data.utils.h5io import write_dataset
    from policyengine_us_data.utils.simulation import state_income_tax

    if county_fips_filter is not None:
        raise ValueError("the example has no county geography (county_fips_filter)")
    data, entities, period, (start, count) = _dataset(str(dataset_path))
    n_records = len(data["household_id"])
    cd = np.asarray(geography.cd_geoid).astype(np.int64)
    if len(weights) != len(cd):
        raise ValueError("weights (%d) and geography (%d) differ in length" % (len(weights), len(cd)))
    mask = np.ones(len(cd), dtype=bool) if cd_subset is None else np.isin(cd, np.array([int(c) for c in cd_subset], dtype=np.int64))
    cols = np.flatnonzero(mask & (weights > 0))
    rec = cols % n_records
    counts = count[rec]
    total = int(counts.sum())
    offsets = np.repeat(np.cumsum(counts) - counts, counts)
    pidx = np.repeat(start[rec], counts) + (np.arange(total) - offsets)
    k = len(cols)

    out = {}
    for name, arr in data.items():
        out[name] = arr[rec] if entities[name] == "household" else arr[pidx]
    new_ids = np.arange(1, k + 1, dtype=np.int64)
    out["original_household_id"] = data["household_id"][rec]
    out["household_id"] = new_ids
    out["household_weight"] = weights[cols].astype(np.float64)
    out["congressional_district_geoid"] = cd[cols]
    out["state_fips"] = cd[cols] // 100
    if "adjusted_gross_income" in out:
        out["state_income_tax"] = state_income_tax(out["adjusted_gross_income"], out["state_fips"])
    out["person_id"] = np.arange(1, total + 1, dtype=np.int64)
    out["person_household_id"] = np.repeat(new_ids, counts)
    ents = dict(entities)
    ents["original_household_id"] = "household"
    write_dataset(str(output_path), out, ents, period, attrs={"n_clone_columns": np.int64(k)})
    _LAST_WRITTEN.clear()
    _LAST_WRITTEN[str(output_path)] = (out, ents)
    print("built %s (%d households, %d persons)" % (os.path.basename(str(output_path)), k, total))
    return output_path
