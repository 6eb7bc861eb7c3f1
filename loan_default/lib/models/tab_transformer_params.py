"""The TabTransformer's hyperparameters, apart from the network so that reading the families
never loads torch.

Fields may be added (with a default), never removed or renamed: registered versions unpickle
their params, and a field they lack reads its class default. The defaults are the fast fit of
issue 24 (README "Models and predictions"): a higher learning rate reaches in at most 10
epochs what 2e-3 reached in 25; one pretraining epoch; no dropout on the attention weights,
which on CPU forces the slow attention kernel and about a fifth of the step time. Before:
learning_rate 2e-3, max_epochs 25, patience 4, pretrain_epochs 3, attention dropout 0.1.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TabTransformerParams:
    embedding_dim: int = 16
    heads: int = 2
    layers: int = 1
    dropout: float = 0.1  # feed-forward and residual connections
    learning_rate: float = 1e-2
    weight_decay: float = 1e-4
    batch_size: int = 256
    max_epochs: int = 10
    patience: int = 3
    early_stopping_fraction: float = 0.15
    seed: int = 42
    pretrain_epochs: int = 1
    corruption_rate: float = 0.3
    temperature: float = 0.5
    clip: float = 5.0
    threads: int = 1  # see tab_transformer._torch_threads
    attention_dropout: float = 0.0  # on the attention weights
