"""The base of every model in chalicelib."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """A pydantic model whose validator and schema are built on first use, not at import.

    Every Lambda function imports the whole app, so building all schemas at import time made each
    SQS worker pay for every HTTP model at cold start; deferred, a function pays only for the models
    its own path touches (measured by ``make bench``'s cold-start row).
    """

    model_config = ConfigDict(defer_build=True)
