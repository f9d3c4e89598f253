"""`python -m lcm_cli`: the same as the `lcm` console script."""

from lcm_cli.main import run

run()
