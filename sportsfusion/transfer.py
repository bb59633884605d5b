"""Transfer learning (paper-facts §6, Table 3): start from a trained network, train some layers.

    softmax  the network is a frozen feature extractor; a new classifier (FC8) on FC7's output
    top3     FC6, FC7 and a new FC8 are retrained, convolutions frozen
    all      every layer fine-tuned (FC8 new)
Training from scratch is simply a run without --init.
"""

from __future__ import annotations

from torch import nn

from sportsfusion.checkpoint import load_state, read_checkpoint
from sportsfusion.models import from_arch

TRAIN_LAYERS = ("softmax", "top3", "all")
NEW_CLASSIFIER = ("head.fc8.",)


def init_from_checkpoint(path: str, num_classes: int, dropout: float) -> tuple[nn.Module, dict]:
    """The checkpoint's architecture with a fresh classifier for `num_classes`."""
    state = read_checkpoint(path)
    model = from_arch(state["arch"], num_classes=num_classes, dropout=dropout)
    load_state(model, state["model"], path, skip_prefixes=NEW_CLASSIFIER)
    return model, state


def trained_modules(model: nn.Module, train_layers: str) -> list[nn.Module]:
    head = model.head
    if train_layers == "softmax":
        return [head.fc8, head.drop8]
    if train_layers == "top3":
        return [head]
    return [model]


def freeze_for(model: nn.Module, train_layers: str) -> list[nn.Parameter]:
    """Set requires_grad per `train_layers`; returns the parameters to optimise."""
    trained = trained_modules(model, train_layers)
    model.requires_grad_(False)
    for m in trained:
        m.requires_grad_(True)
    return [p for p in model.parameters() if p.requires_grad]


def set_train_mode(model: nn.Module, train_layers: str) -> None:
    """Frozen layers run in eval mode (no dropout in front of a layer that does not learn)."""
    model.eval()
    for m in trained_modules(model, train_layers):
        m.train()
