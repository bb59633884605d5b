"""SportsFusion: large-scale video classification with CNNs (Karpathy et al., CVPR 2014).

Kept light on purpose: importing the package must not import torch extensions, PyAV or DALI.
"""

__version__ = "0.1.0"
