"""Mirrors `policyengine_us_data.datasets.puf.irs_puf` (IRS_PUF_2015): the
IRS SOI Public Use File and its demographics supplement, one row per tax
return, with the original upper-case PUF column names (S006 weight in
hundredths, MARS, XTOT, E00200 wages, ...), read from
STORAGE_FOLDER/puf_2015.csv and demographics_2015.csv, which the
prerequisites download puts there (the twin's "Hub" holds 800 synthetic
returns with the heavy top tail the PUF is used for).

    python -m policyengine_us_data.datasets.puf.irs_puf

No flags. Writes STORAGE_FOLDER/irs_puf_2015.h5 (the real one a pandas
HDFStore with tables `puf` and `puf_demographics`; the twin's one dataset
file with the demographics joined by RECID).
"""

import csv
import time

from policyengine_us_data.utils.io import UsageError, run_main

PERIOD = 2015


def read_table(path, what):
    if not path.exists():
        raise FileNotFoundError(
            "%s file not found at %s. Either put it there (the prerequisites download does), or change %s to point to a different path."
            % (what, path, __file__)
        )
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    if not body or header[0] != "RECID":
        raise UsageError("%s is not a PUF table (no RECID column or no rows)" % path)
    return header, body


def join_tables(puf, demographics):
    import numpy as np

    header, body = puf
    d_header, d_body = demographics
    cols = {name: np.array([int(r[i]) for r in body], dtype=np.int64) for i, name in enumerate(header)}
    by_recid = {int(r[0]): r for r in d_body}
    missing = [int(r) for r in cols["RECID"] if int(r) not in by_recid]
    if missing:
        raise UsageError("demographics lack %d returns (first RECID %d)" % (len(missing), missing[0]))
    for i, name in enumerate(d_header[1:], start=1):
        cols[name] = np.array([int(by_recid[int(r)][i]) for r in cols["RECID"]], dtype=np.int64)
    return cols


def main(argv=None):
    from policyengine_us_data.storage import STORAGE_FOLDER
    from policyengine_us_data.utils.h5io import write_dataset

    t0 = time.perf_counter()
    cols = join_tables(
        read_table(STORAGE_FOLDER / "puf_2015.csv", "PUF"),
        read_table(STORAGE_FOLDER / "demographics_2015.csv", "PUF demographics"),
    )
    write_dataset(str(STORAGE_FOLDER / "irs_puf_2015.h5"), cols, {c: "tax_unit" for c in cols}, PERIOD)
    print("irs_puf: %d records -> irs_puf_2015.h5 (%.2fs)" % (len(cols["RECID"]), time.perf_counter() - t0))
    return 0


if __name__ == "__main__":
    run_main(main)
