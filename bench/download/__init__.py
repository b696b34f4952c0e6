"""Fetch, verify and prepare SCAN features, vocabularies, annotations and released checkpoints.

`registry` lists every item; `fetch` downloads, `verify` checks, `prepare` extracts and
places; `pipeline` runs one item end to end; `bench/cli/download.py` is the CLI.
"""
