"""``python -m cellgi`` runs the command line."""

from cellgi.cli.main import entrypoint

entrypoint()
