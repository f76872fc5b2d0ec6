"""Run every benchmark in turn: ``python -m bench`` (``make bench``).

Each benchmark starts its own servers on free loopback ports, prints its
same-run comparison, and stops them. Pass names to run only some:
``python -m bench ocsp tsa``.
"""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = (
    "ocsp",
    "tsa",
    "globalconf",
    "adapter",
    "message_work",
    "http11",
    "exchange",
    "messagelog",
    "timestamper",
)


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {BENCHMARKS}")
        return 2
    failed = []
    for name in names:
        print(f"\n=== bench_{name} ===", flush=True)
        code = subprocess.call([sys.executable, "-m", f"bench.bench_{name}"])
        if code != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
