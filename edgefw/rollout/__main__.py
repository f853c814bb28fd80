"""``python -m edgefw.rollout rollout PLAN``: the fleet commands before
they join edgefw's command table."""

import argparse
import sys

from edgefw.rollout import cli

p = argparse.ArgumentParser(prog="python -m edgefw.rollout")
cli.add_parser(p)
sys.exit(cli.main(p.parse_args()))
