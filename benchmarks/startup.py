"""Start-up time of the command line: ``tlssim --help`` against ``python -c pass``.

Usage: python benchmarks/startup.py [--runs N]

Runs each N times (default 5), alternating, in fresh processes, and prints the best of
each and, last, ``cli_own_s X``: the CLI's own start-up (best --help minus best bare
interpreter). The goal (issue 11) is under 0.3 s on this machine class.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time


def _seconds(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    bare, cli = [], []
    for _ in range(runs):
        bare.append(_seconds([sys.executable, "-c", "pass"]))
        cli.append(_seconds([sys.executable, "-m", "sim", "--help"]))
    print(f"python -c pass: best {min(bare):.3f} s of {runs}")
    print(f"tlssim --help:  best {min(cli):.3f} s of {runs}")
    print(f"cli_own_s {min(cli) - min(bare):.3f}")


if __name__ == "__main__":
    main()
