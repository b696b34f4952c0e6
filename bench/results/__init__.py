"""Figures beside the paper's: result rows, CSV/JSON, provenance, summary, tables, plots."""
