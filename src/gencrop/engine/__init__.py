"""The data engine: caption -> outpaint -> quality filter -> segment."""
