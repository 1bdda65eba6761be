"""Errors a person can fix (params, data, checkpoints, artifacts): the CLI prints them as one line, exit 2."""

from __future__ import annotations


class TenfoldError(Exception):
    """Base of every error whose message says what is wrong and what to do."""


class ArtifactError(TenfoldError):
    """A file a stage wrote (parquet, npz, checkpoint, weights) cannot be read: truncated, corrupt or stale.
    The CLI adds the DVC stage that rebuilds it (`dvc repro <stage>`) when dvc.yaml names the file."""

    def __init__(self, path, problem: str):
        self.path, self.problem = str(path), problem
        super().__init__(f"{path}: {problem}")
