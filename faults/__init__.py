"""Fault injectors and the schedule that fires and heals them."""
