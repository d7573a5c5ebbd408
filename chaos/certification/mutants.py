"""The seeded-bug proofs: for each scenario, a deliberately buggy connector the suite must flag.

Each mutant travels with its connector kind in the connector table (`drivers.connectors`), plug-ins'
as well as ours. A mutant is killed when its experiment fails (exit 1) and the invariant it names is
among the failing verdicts: failing for some other reason would not prove that the checker meant
for that bug can see it.
"""

from __future__ import annotations

from drivers.connectors import KINDS, all_mutants, origin
from drivers.sdk.connector import Mutant

MUTANTS: tuple[Mutant, ...] = tuple(all_mutants([k for k in KINDS if not origin(k).plugin]))
"""Our own kinds' seeded bugs: what `chaos certify --mutants` runs; a plug-in's run with `--connector`."""
EVERY_MUTANT: tuple[Mutant, ...] = tuple(all_mutants())
