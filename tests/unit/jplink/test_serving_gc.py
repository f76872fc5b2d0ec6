"""The collector settings of server processes (jplink.serving.tune_gc).

Each check runs in a fresh interpreter: the settings are process-wide and
must not leak into the test session.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from jplink.serving import GC_YOUNG_THRESHOLD


def _run(code: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_start_up_objects_are_frozen_and_the_young_generation_is_larger():
    out = _run(
        """
        import gc, json
        from jplink.serving import tune_gc
        before = gc.get_threshold()
        tune_gc()
        print(json.dumps({"frozen": gc.get_freeze_count(),
                          "before": before, "after": gc.get_threshold()}))
        """
    )
    assert out["frozen"] > 10_000  # the modules a server has loaded, at least
    before, after = out["before"], out["after"]
    assert isinstance(before, list) and isinstance(after, list)
    assert after == [GC_YOUNG_THRESHOLD, before[1], before[2]]


def test_cyclic_garbage_is_still_collected_without_an_explicit_collect():
    # Memory stays bounded: cycles made after start-up are found by the
    # collector's own runs once enough of them accumulate.
    out = _run(
        """
        import gc, json, weakref
        from jplink.serving import tune_gc
        tune_gc()

        class Node:
            pass

        freed = 0

        def count(_ref):
            global freed
            freed += 1

        refs = []
        for _ in range(10 * 20_000):
            a, b = Node(), Node()
            a.other, b.other = b, a
            refs.append(weakref.ref(a, count))
        print(json.dumps({"freed": freed, "made": len(refs)}))
        """
    )
    made, freed = out["made"], out["freed"]
    assert isinstance(made, int) and isinstance(freed, int)
    # Cycles of the last young generation may wait; the rest were collected.
    assert freed >= made - 2 * GC_YOUNG_THRESHOLD
