"""daa-bench: reproduce DAA (NeurIPS 2022) on SGRAF's SGR / SAF models with SCAN features.

    python -m bench eval --checkpoint models/coco_sgr.pth.tar --protocol coco-5k

Paper: https://openreview.net/forum?id=-KPNRZ8i0ag
"""

__version__ = "0.1.0"
