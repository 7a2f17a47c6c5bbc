"""Training (torch): losses, the training loop, checkpoints."""
