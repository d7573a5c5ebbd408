"""Connectors and the pipeline processes that run them: the systems under test."""
