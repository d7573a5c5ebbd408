"""Where provisioned tools and the shared environment live on disk."""

from __future__ import annotations

import os
from pathlib import Path


def chaos_home() -> Path:
    """The cache root: `CHAOS_HOME`, or `~/.cache/chaos`."""
    return Path(os.environ.get("CHAOS_HOME") or Path.home() / ".cache" / "chaos")


def default_env_file() -> Path:
    """The state file `chaos env up` writes and `chaos run` attaches to."""
    return chaos_home() / "env" / "state.json"
