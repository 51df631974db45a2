"""Training GenCrop: the loss, the schedule and the loop (single process or under Accelerate)."""
