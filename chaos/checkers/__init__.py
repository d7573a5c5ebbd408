"""Recovery invariants, one module each, computed with pyarrow from the history and independent reads."""

from chaos.checkers.verdict import Verdict

__all__ = ["Verdict"]
