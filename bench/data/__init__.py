"""Inputs: SCAN splits, vocabularies, COCO ids, caption semantics (TF-IDF), generated data."""
