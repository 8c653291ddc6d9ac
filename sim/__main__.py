"""``python -m sim``: the same command line as ``tlssim``."""

from sim.cli import main

main()
