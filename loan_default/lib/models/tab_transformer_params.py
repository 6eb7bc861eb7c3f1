"""The TabTransformer's hyperparameters, apart from the network so that reading the families
never loads torch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TabTransformerParams:
    embedding_dim: int = 16
    heads: int = 2
    layers: int = 1
    dropout: float = 0.1
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    batch_size: int = 256
    max_epochs: int = 25
    patience: int = 4
    early_stopping_fraction: float = 0.15
    seed: int = 42
    pretrain_epochs: int = 3
    corruption_rate: float = 0.3
    temperature: float = 0.5
    clip: float = 5.0
    threads: int = 1  # see tab_transformer._torch_threads
