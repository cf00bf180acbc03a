"""The `gpt2` command: one module per subcommand, each a thin layer over the Python API."""
