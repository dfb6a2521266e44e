"""`python -m fmcsa_cli` is `./fmcsa` without the environment sync."""

from fmcsa_cli.main import main

main()
