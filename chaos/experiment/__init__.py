"""The experiment spec: models, and a loader that turns bad input into precise errors."""

from chaos.experiment.loader import load_experiment
from chaos.experiment.models import Experiment

__all__ = ["Experiment", "load_experiment"]
