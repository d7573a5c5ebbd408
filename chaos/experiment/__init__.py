"""The experiment spec: models, and a loader that turns bad input into precise errors."""

from chaos.experiment.loader import dump_experiment, load_experiment
from chaos.experiment.models import Experiment

__all__ = ["Experiment", "dump_experiment", "load_experiment"]
