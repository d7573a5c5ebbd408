"""The CLI's commands beyond running experiments: the shared environment and the matrix."""
