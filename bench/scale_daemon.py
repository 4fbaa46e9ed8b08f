"""``marketsync run`` with simulated time running ``--speed`` times faster (bench/scale.py).

The scale benchmark measures the daemon as an operator runs it: its own process, the real
command line (``marketsync.daemon.cli``), signals, PostgreSQL. Only its clock differs: a
day must pass in minutes, so trio runs on ``MockClock(rate=speed)`` with "now" pinned to
``--start``, the simulated moment the simulator (``marketsync sandbox serve --speed``,
another process) showed just before. Both clocks then run ``speed`` times faster than
the wall clock from nearly the same instant; the daemon trails the simulator by
``speed`` × its start-up time, a safe direction (it asks for data slightly older than
the simulator has). Everything in the daemon, timeouts included, runs ``speed`` times
faster too: that is what limits the speed-up on a loaded machine.

    python bench/scale_daemon.py --speed 10 --start 2026-11-02T12:00:00Z -- -c cfg.yaml run
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

import trio
import trio.testing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", type=float, required=True)
    parser.add_argument("--start", required=True, help="simulated now, ISO 8601")
    parser.add_argument("--profile", metavar="FILE", help="cProfile every thread, write "
                        "the combined stats here at exit (finding what idle costs)")
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    start = datetime.fromisoformat(args.start.replace("Z", "+00:00"))
    rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest

    from marketsync.core import clock

    real_run = trio.run

    def run_fast(fn, *fn_args, **kwargs):
        async def anchored(*inner):
            clock.set_start(start)
            return await fn(*inner)

        kwargs.setdefault("clock", trio.testing.MockClock(rate=args.speed))
        return real_run(anchored, *fn_args, **kwargs)

    trio.run = run_fast
    from marketsync.daemon import cli

    sys.argv = ["marketsync", *rest]
    if not args.profile:
        cli()
        return
    import cProfile
    import pstats
    import threading

    profiles = [cProfile.Profile()]

    def in_each_thread(*_ignored):
        sys.setprofile(None)
        profile = cProfile.Profile()
        profiles.append(profile)
        profile.enable()

    threading.setprofile(in_each_thread)
    profiles[0].enable()
    try:
        cli()
    finally:
        for profile in profiles:
            profile.disable()
        stats = pstats.Stats(profiles[0])
        for profile in profiles[1:]:
            try:
                stats.add(profile)
            except TypeError:  # a thread that never ran anything
                pass
        stats.dump_stats(args.profile)


if __name__ == "__main__":
    main()
