"""Run the command line interface: ``python -m detector``."""

from detector.cli import cli

if __name__ == "__main__":
    cli()
