"""The seeded-bug proofs: for each scenario, a deliberately buggy connector the suite must flag.

Each mutant travels with its connector kind in the connector table (`drivers.connectors`), plug-ins'
as well as ours. A mutant is killed when its experiment fails (exit 1) and the invariant it names is
among the failing verdicts: failing for some other reason would not prove that the checker meant
for that bug can see it.
"""

from __future__ import annotations

from drivers.connectors import all_mutants
from drivers.sdk.connector import Mutant

MUTANTS: tuple[Mutant, ...] = tuple(all_mutants())
