#!/usr/bin/env python3
"""Write N copies of a saved VirusTotal IP address object as JSON Lines, each with its own id.

Input for `vt-enrich flatten` throughput runs (see benches/README.md). Only `data.id` and
`data.links.self` change, so every line has about the size and shape of the template.

Usage: gen_jsonl.py COUNT OUTPUT [TEMPLATE]
TEMPLATE defaults to tests/data/responses/ip_8.8.8.8_2025_rich.json.
"""

import json
import pathlib
import sys

DEFAULT_TEMPLATE = (
    pathlib.Path(__file__).resolve().parent.parent
    / "tests/data/responses/ip_8.8.8.8_2025_rich.json"
)


def address(n):
    """Return a distinct public IPv4 address for n (up to 250 * 250 * 250)."""
    return f"45.{10 + n // 62_500}.{(n // 250) % 250}.{n % 250 + 1}"


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    count = int(sys.argv[1])
    output = pathlib.Path(sys.argv[2])
    template = pathlib.Path(sys.argv[3]) if len(sys.argv) == 4 else DEFAULT_TEMPLATE
    document = json.loads(template.read_text(encoding="utf-8"))
    with output.open("w", encoding="utf-8") as out:
        for n in range(count):
            ip = address(n)
            document["data"]["id"] = ip
            document["data"]["links"] = {
                "self": f"https://www.virustotal.com/api/v3/ip_addresses/{ip}"
            }
            out.write(json.dumps(document, separators=(",", ":"), ensure_ascii=False))
            out.write("\n")


if __name__ == "__main__":
    main()
