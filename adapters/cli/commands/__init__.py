"""The ``toolrt`` commands, one module per group; ``toolrt.adapters.cli.main.build_app`` puts them together."""
