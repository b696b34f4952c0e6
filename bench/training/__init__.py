"""Training with the DAA loss: batches, losses, loop, checkpoint state."""
