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
ENSEMBLE_MEMBERS = ("single", "early", "late", "slow")  # Table 1's CNN average, by name
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
            for n in ENSEMBLE_MEMBERS
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
    """The architecture record, a plain dict that checkpoints and ONNX metadata store and
    `from_arch` rebuilds: `create()`'s arguments for one network, or for a CNN average
    {"name": "average", "members": [each member's record]} (members may come from separate
    training runs, so each keeps its own)."""
    if isinstance(model, CNNAverage):
        return {"name": ENSEMBLE, "members": [arch_of(m) for m in model.members]}
    if not isinstance(model, VideoCNN):
        raise ValueError(f"{type(model).__name__} is not a SportsFusion model")
    return {
        "name": model.name,
        "num_classes": model.head.fc8.out_features,
        "multires": model.multires,
        "stream": model.stream,
        "input_size": model.input_size,
        "width": model.width,
        "dropout": model.dropout,
    }


def from_arch(arch: dict, *, num_classes: int | None = None, dropout: float | None = None):
    """Rebuild a model from its `arch_of` record, optionally with another class count or
    dropout (transfer learning). Raises ValueError/TypeError/KeyError on a bad record."""
    if arch.get("name") == ENSEMBLE and "members" in arch:
        members = [from_arch(m, num_classes=num_classes, dropout=dropout) for m in arch["members"]]
        return CNNAverage(members)
    kw = dict(arch)
    name, classes = kw.pop("name"), kw.pop("num_classes")
    if dropout is not None:
        kw["dropout"] = dropout
    return create(name, num_classes if num_classes is not None else classes, **kw)


__all__ = [
    "ENSEMBLE_MEMBERS",
    "MODELS",
    "NAMES",
    "CNNAverage",
    "VideoCNN",
    "arch_of",
    "create",
    "from_arch",
    "to_channels_last",
]
