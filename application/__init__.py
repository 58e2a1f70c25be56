"""Use cases of toolrt: each one a class with ports passed to ``__init__`` and one ``execute``."""
