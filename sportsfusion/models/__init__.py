"""The paper's models behind one factory.

    create(name, num_classes, multires=False, stream="both", **options)

name          clip (frames_per_clip, frame_spacing)   paper-facts §1
single        1 frame                                  single-frame network
early         10 consecutive frames                    conv1 spans all 10 frames
late          2 frames 15 apart                        two shared single-frame towers -> FC6
slow          10 consecutive frames                    3D conv1-3, temporal 4/2, 2/2, 2/2
average       16 consecutive frames                    "CNN average" of the four (ensemble)

multires=True gives the fovea + context form (178 -> two 89 streams); stream="fovea" or
"context" the one-stream ablations. options: input_size (178), width (channel multiplier, 1.0 =
the paper), dropout (before each FC layer; used by transfer learning).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from sportsfusion.models.early import EARLY_FRAMES, EarlyFusionTower
from sportsfusion.models.ensemble import CNNAverage
from sportsfusion.models.late import LATE_FRAMES, LATE_SPACING, LateFusionTower
from sportsfusion.models.network import VideoCNN, to_channels_last
from sportsfusion.models.single import SingleFrameTower
from sportsfusion.models.slow import SLOW_FRAMES, SlowFusionTower


@dataclass(frozen=True)
class ModelSpec:
    tower: type[nn.Module]
    frames_per_clip: int
    frame_spacing: int


MODELS = {
    "single": ModelSpec(SingleFrameTower, 1, 1),
    "early": ModelSpec(EarlyFusionTower, EARLY_FRAMES, 1),
    "late": ModelSpec(LateFusionTower, LATE_FRAMES, LATE_SPACING),
    "slow": ModelSpec(SlowFusionTower, SLOW_FRAMES, 1),
}
ENSEMBLE = "average"
NAMES = (*MODELS, ENSEMBLE)


def create(
    name: str,
    num_classes: int,
    multires: bool = False,
    stream: str = "both",
    *,
    input_size: int = 178,
    width: float = 1.0,
    dropout: float = 0.0,
) -> nn.Module:
    if name == ENSEMBLE:
        members = [
            create(n, num_classes, multires, stream, input_size=input_size, width=width)
            for n in MODELS
        ]
        return CNNAverage(members)
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: expected one of {', '.join(NAMES)}")
    spec = MODELS[name]
    return VideoCNN(
        name,
        spec.tower,
        num_classes,
        frames_per_clip=spec.frames_per_clip,
        frame_spacing=spec.frame_spacing,
        multires=multires,
        stream=stream,
        input_size=input_size,
        width=width,
        dropout=dropout,
    )


def arch_of(model: nn.Module) -> dict:
    """The architecture as a plain dict (stored in checkpoints; `create(**arch)` rebuilds it)."""
    return {
        "name": model.name,
        "num_classes": model.head.fc8.out_features,
        "multires": model.multires,
        "stream": model.stream,
        "input_size": model.input_size,
        "width": model.width,
        "dropout": model.dropout,
    }


def load_checkpoint(path):
    """Rebuild a trained model from a checkpoint: (model in eval mode, checkpoint dict)."""
    from sportsfusion.checkpoint import load_checkpoint as load  # checkpoint imports create()

    return load(path)


__all__ = [
    "MODELS",
    "NAMES",
    "CNNAverage",
    "VideoCNN",
    "arch_of",
    "create",
    "load_checkpoint",
    "to_channels_last",
]
