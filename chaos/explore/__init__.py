"""`chaos explore` (fresh nemesis draws until something breaks) and `chaos shrink` (a failing run
reduced to a minimal reproducer)."""
