"""One module per protocol command: its argparse parser and ``main(argv)`` (which returns the result and
raises the typed errors). The console entry points wrapping them are in :mod:`pyiqa.protocols.cli`."""
