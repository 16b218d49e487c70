"""Storage: the archive's files and database (see the modules' docstrings)."""
