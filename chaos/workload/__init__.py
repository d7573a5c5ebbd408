"""The seeded workload: records derived from the seed, and a producer that records every outcome."""
