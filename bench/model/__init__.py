"""Checkpoint -> SGR/SAF network -> encoders -> batched similarity engine (plus the per-caption reference)."""
