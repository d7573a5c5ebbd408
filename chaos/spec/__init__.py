"""The experiment spec: models, and a loader that turns bad input into precise errors."""

from chaos.spec.loader import load_experiment
from chaos.spec.models import Experiment

__all__ = ["Experiment", "load_experiment"]
