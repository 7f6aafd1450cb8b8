#!/usr/bin/env python3
"""Write a free-text log of about SIZE_MB megabytes for timing `vt-enrich enrich --extract`.

Usage: python3 benches/gen_log.py SIZE_MB OUT

Lines alternate iptables kernel lines and web server access log lines, as in the `extract`
criterion bench (`benches/input.rs`): about 250 bytes a line, 50,000 distinct public addresses
in 45.10.0.0/16, and private destinations. The output is the same for the same size.
"""

import sys

UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/129.0.6668.90 Safari/537.36")


def public_address(n):
    n %= 50_000
    return f"45.{10 + n // 62_500}.{(n // 250) % 250}.{n % 250 + 1}"


def line(n):
    second = n % 86_400
    clock = f"{second // 3600:02}:{second // 60 % 60:02}:{second % 60:02}"
    remote = public_address(n * 7919)
    if n % 2 == 0:
        local = f"10.20.{n % 4}.{n % 251 + 1}"
        port = (22, 443, 3389, 23, 8080)[n % 5]
        return (f"Oct 11 {clock} fw01 kernel: [8412233.512208] IPTABLES-DROP: IN=eth0 OUT= "
                f"MAC=52:54:00:12:35:02:52:54:00:9a:cb:11:08:00 SRC={remote} DST={local} LEN=60 "
                f"TOS=0x00 PREC=0x00 TTL=51 ID={n} DF PROTO=TCP SPT={30_000 + n % 30_000} "
                f"DPT={port} WINDOW=64240 RES=0x00 SYN URGP=0\n")
    forwarded = f' "{public_address(n)}"' if n % 7 == 0 else ""
    return (f'{remote} - - [11/Oct/2024:{clock} +0000] "GET /static/app.{n}.js HTTP/1.1" '
            f'200 {1000 + n % 50_000} "https://shop.example.com/" "{UA}"{forwarded}\n')


def main():
    size_mb, out = float(sys.argv[1]), sys.argv[2]
    target = int(size_mb * 1_000_000)
    written = 0
    n = 0
    with open(out, "w") as file:
        while written < target:
            chunk = "".join(line(i) for i in range(n, n + 10_000))
            file.write(chunk)
            written += len(chunk)
            n += 10_000
    print(f"{out}: {written} bytes, {n} lines")


if __name__ == "__main__":
    main()
