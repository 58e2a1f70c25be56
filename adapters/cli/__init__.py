"""The ``toolrt`` command line."""
