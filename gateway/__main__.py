"""`python -m gateway` runs the calgate command line."""

from gateway.cli import main

main()
