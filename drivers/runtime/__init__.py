"""The checkpointing runtime: a coordinator, its workers and the stores their checkpoints live in."""
