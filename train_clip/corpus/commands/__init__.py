"""One module per corpus command: its argparse parser and ``main(argv)`` (which returns the result and
raises the typed errors). The console entry points wrapping them are in :mod:`train_clip.corpus.cli`."""
