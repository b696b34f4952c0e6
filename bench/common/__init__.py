"""Infrastructure every stage shares: errors, atomic writes, progress, torch.distributed helpers."""
