"""``python -m nmfsep``: the same command line as the ``nmfsep`` console script."""

from nmfsep.cli import main

if __name__ == "__main__":
    main()
