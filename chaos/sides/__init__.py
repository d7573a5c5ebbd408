"""The harness side of each connector kind: setup, ground truth, and independent reads of the output."""
