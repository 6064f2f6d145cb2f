"""``python -m selftrain ...`` is the ``selftrain`` command (as is ``python cli.py ...`` in a checkout)."""

from selftrain.cli import main

if __name__ == "__main__":
    main()
