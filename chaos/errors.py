"""Errors that end a command with their documented exit code (the README's CLI section)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_VIOLATION = 1
EXIT_INVALID = 2
EXIT_ENVIRONMENT = 3
EXIT_INCONCLUSIVE = 4
"""The experiment did not do what it said (a fault never fired, a crash point was never reached, or
the faults met no pipeline traffic): no verdict on the connector either way."""


class ChaosError(Exception):
    """An expected failure: printed as a message, never as a traceback."""

    exit_code = EXIT_ENVIRONMENT


class SpecError(ChaosError):
    """The experiment file is invalid or asks for something unsupported."""

    exit_code = EXIT_INVALID

    def __init__(self, path: str, problems: list[str]):
        self.path = path
        self.problems = [" ".join(problem.split()) for problem in problems]
        """Each on one line, as printed: a parser's message may span lines, a user's key may hold any."""
        super().__init__(f"{path}: " + "; ".join(problems))


class EnvironmentFailure(ChaosError):
    """A service or tool the experiment needs could not be provided."""

    exit_code = EXIT_ENVIRONMENT

    def __init__(self, message: str, log_tail: str = ""):
        self.log_tail = log_tail
        super().__init__(message)
