"""The `tcd` commands of the archive core, one module per area; registered as `tcd.commands`
entry points in pyproject.toml."""
