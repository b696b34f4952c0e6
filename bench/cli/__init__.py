"""`python -m bench <command>`: argument parsing over the library, one module per command."""
