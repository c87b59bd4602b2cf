"""``python -m weightbase``: the same as the ``weightbase`` script."""

from weightbase.cli import main

main()
