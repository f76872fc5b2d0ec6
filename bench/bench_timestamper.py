"""What a time-stamping run costs the exchanges' log commits (SQLite).

A writer commits 16 message-log records every 2 ms, as a busy security
server's message log does, and its commit latency is measured in two phases
of the same run: alone, and while the time-stamper stamps a backlog of
``--records`` records (the real TSA core, in process; its signing time is
part of the run). Exchanges are answered only after their records are
committed, so a commit that waits is an exchange that waits. Printed: the
commit latency's median, p99 and maximum in both phases, the longest stall
of the event loop, and the stamping run's duration and CPU per record.

    .venv/bin/python -m bench.bench_timestamper --records 3000 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import secrets
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import uvloop

if TYPE_CHECKING:
    from security_server.messagelog import MessageLogWriter
    from security_server.timestamper import Timestamper

WRITE_EVERY = 0.002
WRITE_ROWS = 16


async def _phase(
    writer: MessageLogWriter, stamp: Timestamper | None, now: dt.datetime, tag: str
) -> tuple[list[float], float, float, float, int]:
    """Commit latencies, longest loop stall, stamping wall and CPU seconds,
    records stamped."""
    from tests.integration.security_server.test_timestamper import signature_xml
    from tests.support.messagelog import entry

    latencies: list[float] = []
    stalls: list[float] = []
    done = asyncio.Event()

    async def write() -> None:
        i = 0
        while not done.is_set():
            rows = [
                entry(
                    f"{tag}-{i}-{k}",
                    now,
                    signature_xml=signature_xml(secrets.token_bytes(64)),
                )
                for k in range(WRITE_ROWS)
            ]
            start = time.perf_counter()
            await writer.write(rows)
            latencies.append(time.perf_counter() - start)
            i += 1
            await asyncio.sleep(WRITE_EVERY)

    async def tick() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.001)
            at = time.perf_counter()
            stalls.append(at - last - 0.001)
            last = at

    tasks = [asyncio.create_task(write()), asyncio.create_task(tick())]
    await asyncio.sleep(0.2)
    wall = cpu = 0.0
    stamped = 0
    if stamp is not None:
        c0, t0 = time.process_time(), time.perf_counter()
        batch = await stamp.stamp_batch()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        stamped = 0 if batch is None else len(batch.record_ids)
    else:
        await asyncio.sleep(0.15)
    await asyncio.sleep(0.1)
    done.set()
    await asyncio.gather(*tasks)
    return latencies, max(stalls, default=0.0), wall, cpu, stamped


def _ms(values: list[float]) -> str:
    values = sorted(values)
    p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
    return (
        f"median {statistics.median(values) * 1000:5.1f}  p99 {p99 * 1000:6.1f}"
        f"  max {values[-1] * 1000:6.1f} ms"
    )


async def main(args: argparse.Namespace) -> None:
    from security_server.config import MessageLogMode
    from security_server.db import open_database
    from security_server.messagelog import MessageLogWriter
    from tests.integration.security_server.test_timestamper import (
        Clock,
        log_records,
        make_stamper,
        make_tsa,
    )

    work = Path(tempfile.mkdtemp(prefix="bench-timestamper-"))
    db = await open_database(f"sqlite+aiosqlite:///{work}/ss.db")
    now = dt.datetime.now(dt.UTC)
    clock = Clock(now)
    tsa = make_tsa(now, clock)
    writer = MessageLogWriter(db, MessageLogMode.FULL)
    try:
        for r in range(args.rounds):
            await log_records(db, args.records, now, prefix=f"backlog{r}-")
            stamper, _ = make_stamper(db, tsa, clock)
            gc.collect()
            gc.freeze()  # as `serve` does after start-up (jplink.serving.tune_gc)
            alone, stall0, *_ = await _phase(writer, None, now, f"a{r}")
            during, stall1, wall, cpu, n = await _phase(writer, stamper, now, f"s{r}")
            # The CPU includes the writer's and the in-process TSA's.
            print(f"round {r + 1}: stamped {n} records in {wall * 1000:.0f} ms "
                  f"({cpu / n * 1e6:.0f} µs CPU per record)")  # fmt: skip
            for label, values, stall in (
                ("alone:         ", alone, stall0),
                ("while stamping:", during, stall1),
            ):
                print(f"  log commits {label} {_ms(values)}  "
                      f"loop stall max {stall * 1000:.1f} ms")  # fmt: skip
    finally:
        await writer.close()
        await db.dispose()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    uvloop.run(main(parser.parse_args()))
