"""``python -m cli``: the same as the ``equisearch`` command."""
from cli.app import main

main()
