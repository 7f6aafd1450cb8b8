#!/usr/bin/env python3
"""Write a firewall export for `--join` runs: ROWS rows of timestamp,src_ip,dst_ip,dst_port,action.

Destinations, and every second source, are drawn (fixed seed) from the first POOL addresses that
gen_jsonl.py writes documents for, so `--from` with its output answers every public address.
The other sources are private and end `skipped`.

Usage: gen_firewall.py ROWS POOL OUTPUT
"""

import random
import sys


def address(n):
    """Return the n-th public IPv4 address of gen_jsonl.py."""
    return f"45.{10 + n // 62_500}.{(n // 250) % 250}.{n % 250 + 1}"


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    rows, pool, output = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    draw = random.Random(7).randrange
    with open(output, "w", encoding="ascii") as out:
        out.write("timestamp,src_ip,dst_ip,dst_port,action\n")
        for n in range(rows):
            second = n % 86_400
            source = f"10.{n % 4}.{n // 7 % 256}.{n % 251}" if n % 2 else address(draw(pool))
            out.write(
                f"2026-12-03T{second // 3600:02}:{second // 60 % 60:02}:{second % 60:02}Z,"
                f"{source},{address(draw(pool))},{(443, 80, 53)[n % 3]},"
                f"{'deny' if n % 9 == 0 else 'allow'}\n"
            )


if __name__ == "__main__":
    main()
