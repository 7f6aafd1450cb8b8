#!/usr/bin/env python3
"""Enrich IP addresses the usual Python way, as the peer of vt-enrich in benchmarks.

The usual way is vt-py's async client (`vt.Client`) with a fixed number of requests in flight,
then `pandas.json_normalize` over the IP address objects, then pyarrow's Parquet writer.
Columns that hold lists or objects after `json_normalize` are written as JSON text, because
pyarrow cannot convert columns that mix types (lists of objects with different keys, or a list
in one row and a missing value in the next).

Usage:
  peer_enrich.py fetch --host http://127.0.0.1:PORT --key KEY [--concurrency 64] IPS OUT.parquet
  peer_enrich.py flatten DOCS.jsonl OUT.parquet

`fetch` reads one address per line from IPS. `flatten` reads one API response
(`{"data": {...}}`) per line. Both print one JSON line with counts and seconds per step to
standard output.
"""

import argparse
import asyncio
import json
import sys
import time

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import vt


async def fetch_all(host, key, concurrency, addresses):
    """Fetch the IP address object of each address, at most `concurrency` requests at once.

    Returns the objects as plain dicts and the number of addresses that failed.
    """
    slots = asyncio.Semaphore(concurrency)
    documents = []
    failed = 0

    async with vt.Client(key, host=host, timeout=60) as client:

        async def fetch_one(address):
            nonlocal failed
            async with slots:
                try:
                    obj = await client.get_object_async("/ip_addresses/{}", address)
                except vt.APIError as error:
                    failed += 1
                    print(f"{address}: {error.code}: {error.message}", file=sys.stderr)
                    return
            documents.append(obj.to_dict())

        await asyncio.gather(*(fetch_one(address) for address in addresses))
    return documents, failed


def to_frame(documents):
    """Flatten IP address objects into one row each with `pandas.json_normalize`."""
    frame = pd.json_normalize(documents)
    for column in frame.columns:
        if frame[column].dtype == object and frame[column].map(is_nested).any():
            frame[column] = frame[column].map(to_json_text)
    return frame


def is_nested(value):
    return isinstance(value, (list, dict))


def to_json_text(value):
    if is_nested(value):
        return json.dumps(value)
    return value


def write_parquet(frame, path):
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)


def read_documents(path):
    """Read one API response per line and return the `data` members."""
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line)["data"] for line in lines if line.strip()]


def run_fetch(args):
    with open(args.ips, encoding="utf-8") as lines:
        addresses = [line.strip() for line in lines if line.strip()]

    started = time.perf_counter()
    documents, failed = asyncio.run(
        fetch_all(args.host, args.key, args.concurrency, addresses)
    )
    fetched = time.perf_counter()
    frame = to_frame(documents)
    flattened = time.perf_counter()
    write_parquet(frame, args.output)
    written = time.perf_counter()

    return {
        "addresses": len(addresses),
        "ok": len(documents),
        "failed": failed,
        "columns": len(frame.columns),
        "fetch_s": round(fetched - started, 3),
        "flatten_s": round(flattened - fetched, 3),
        "write_s": round(written - flattened, 3),
        "total_s": round(written - started, 3),
    }


def run_flatten(args):
    started = time.perf_counter()
    documents = read_documents(args.documents)
    read = time.perf_counter()
    frame = to_frame(documents)
    flattened = time.perf_counter()
    write_parquet(frame, args.output)
    written = time.perf_counter()

    return {
        "documents": len(documents),
        "columns": len(frame.columns),
        "read_s": round(read - started, 3),
        "flatten_s": round(flattened - read, 3),
        "write_s": round(written - flattened, 3),
        "total_s": round(written - started, 3),
    }


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    fetch = commands.add_parser("fetch", help="fetch, flatten and write Parquet")
    fetch.add_argument("--host", required=True, help="API host without /api/v3")
    fetch.add_argument("--key", required=True, help="API key")
    fetch.add_argument("--concurrency", type=int, default=64, help="requests in flight")
    fetch.add_argument("ips", help="file with one address per line")
    fetch.add_argument("output", help="Parquet file to write")

    flatten = commands.add_parser("flatten", help="flatten saved responses and write Parquet")
    flatten.add_argument("documents", help="JSON Lines file of API responses")
    flatten.add_argument("output", help="Parquet file to write")
    return parser.parse_args()


def main():
    args = parse_args()
    if args.command == "fetch":
        summary = run_fetch(args)
    else:
        summary = run_flatten(args)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
