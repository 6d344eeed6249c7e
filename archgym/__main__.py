"""``python -m archgym`` runs the command-line interface."""

from archgym.cli import main

main()
