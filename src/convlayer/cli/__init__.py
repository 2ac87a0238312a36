"""The ``convlayer`` command line: one small module per command."""
