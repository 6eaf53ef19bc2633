"""``python -m salesproc``: the same as the ``salesproc`` command."""

from salesproc.cli import main

if __name__ == "__main__":
    main(prog_name="salesproc")
