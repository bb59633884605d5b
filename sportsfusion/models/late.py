"""Late fusion (paper-facts §1): two single-frame towers with SHARED weights, on two frames 15
frames apart, up to conv5 (incl. P3); their outputs are concatenated into FC6.

The shared tower is one SingleFrameTower run over both frames (folded into the batch), so the
weights are shared by construction.
"""

from sportsfusion.models.single import SingleFrameTower

LATE_FRAMES = 2
LATE_SPACING = 15

LateFusionTower = SingleFrameTower  # applied per frame: a 'column' of the network
