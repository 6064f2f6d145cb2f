#!/usr/bin/env python
"""Run the selftrain command line from a checkout: ``python cli.py ...`` is ``selftrain ...``."""

from selftrain.cli import main

if __name__ == "__main__":
    main()
