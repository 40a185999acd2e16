"""``python -m facecli``: the same command line as ``facecli``."""

from facecli.cli import main

if __name__ == "__main__":
    main()
