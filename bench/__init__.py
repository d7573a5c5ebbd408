"""Benchmarks of the testbed itself: checker throughput, pipeline throughput, the cost of the
Toxiproxy hop and the environment's start and reset times.

Each module runs with one command (`python -m bench.<name>`), prints a small table and writes its
figures to `bench/results/<name>.json`. See docs/benchmarks.md for the figures and how they were made.
"""
