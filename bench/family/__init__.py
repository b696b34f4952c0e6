"""The SGRAF family beside DAA: its released checkpoints, and which method a run's checkpoint is (docs/family.md)."""
