"""The paper's "CNN average" (Table 1): single + early + late + slow fusion, class
probabilities averaged.

The members need different clips (1 frame; 10 frames; 2 frames 15 apart), so the ensemble takes
one clip long enough for all of them (16 consecutive frames) and hands each member its frames,
centred in that window. It returns log-probabilities: softmax of its output is the mean of the
members' probabilities, so it plugs into the same evaluation code as a single model.
"""

from __future__ import annotations

import torch
from torch import nn


def member_frames(span: int, frames_per_clip: int, frame_spacing: int) -> list[int]:
    """Indices of a member's frames, centred inside a window of `span` consecutive frames."""
    own = (frames_per_clip - 1) * frame_spacing + 1
    start = (span - own) // 2
    return [start + i * frame_spacing for i in range(frames_per_clip)]


class CNNAverage(nn.Module):
    frame_spacing = 1

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        if not members:
            raise ValueError("CNNAverage needs at least one member")
        self.members = nn.ModuleList(members)
        self.frames_per_clip = max((m.frames_per_clip - 1) * m.frame_spacing + 1 for m in members)
        self.input_size = members[0].input_size
        for i, m in enumerate(members):
            idx = torch.tensor(
                member_frames(self.frames_per_clip, m.frames_per_clip, m.frame_spacing)
            )
            self.register_buffer(f"frames_{i}", idx, persistent=False)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:  # (B, 16, H, W, 3) -> (B, classes)
        probs = [
            m(clips.index_select(1, getattr(self, f"frames_{i}"))).float().softmax(dim=1)
            for i, m in enumerate(self.members)
        ]
        return torch.stack(probs).mean(0).log()
