"""Mirrors `policyengine_us_data.calibration.local_h5.partitioning`
(`partition_weighted_work_items`): deterministic LPT greedy partition of
weighted work items into at most `num_workers` chunks (sort by -weight, then
key; assign each to the least-loaded bin, ties to the lowest bin index;
empty chunks dropped).

    python -m policyengine_us_data.calibration.partitioning --areas areas.json \
        --num-workers 4 [--types state,district,city] [--output chunks.json]

Prints / writes a JSON list of chunks, each a list of {"type", "id", "path"}.
"""

import argparse
import heapq
import json

from policyengine_us_data.utils.io import UsageError, atomic_write_text, run_main


def work_item_key(item):
    return "%s:%s" % (item["type"], item["id"])


def partition_weighted_work_items(items, num_workers, completed=()):
    done = set(completed)
    remaining = [i for i in items if work_item_key(i) not in done]
    n_bins = min(num_workers, len(remaining))
    if n_bins <= 0:
        return []
    ordered = sorted(remaining, key=lambda i: (-i.get("weight", 1), work_item_key(i)))
    heap = [(0, b) for b in range(n_bins)]
    bins = [[] for _ in range(n_bins)]
    for item in ordered:
        load, b = heapq.heappop(heap)
        bins[b].append(item)
        heapq.heappush(heap, (load + item.get("weight", 1), b))
    return [b for b in bins if b]


def main(argv=None):
    p = argparse.ArgumentParser(description="LPT-partition area work items")
    p.add_argument("--areas", required=True, help="areas.json from area_catalog")
    p.add_argument("--num-workers", type=int, required=True)
    p.add_argument("--types", default="state,district,city", help="comma-separated item types to include")
    p.add_argument("--output", default=None)
    args = p.parse_args(argv)
    if args.num_workers < 0:
        raise UsageError("--num-workers must be >= 0")
    try:
        with open(args.areas) as f:
            items = json.load(f)
    except (OSError, ValueError) as exc:
        raise UsageError("cannot read %s: %s" % (args.areas, exc))
    types = set(t for t in args.types.split(",") if t)
    items = [i for i in items if i["type"] in types]
    chunks = [
        [{"type": i["type"], "id": i["id"], "path": i["path"]} for i in chunk]
        for chunk in partition_weighted_work_items(items, args.num_workers)
    ]
    text = json.dumps(chunks, sort_keys=True) + "\n"
    if args.output:
        atomic_write_text(args.output, text)
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    run_main(main)
