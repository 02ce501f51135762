"""One module per CLI subcommand; see blox_inspect.cli."""
