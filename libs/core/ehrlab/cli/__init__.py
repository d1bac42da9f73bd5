"""The `ehrlab` command line."""
