"""A chaos plug-in: PostgreSQL as a two-phase sink and as a batch source (see README.md)."""
