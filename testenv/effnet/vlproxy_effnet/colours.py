"""Dominant named colours of a product photo, from its pixels (the network knows no colours).

The background is estimated from the image border and removed; the remaining pixels vote for the
nearest colour of a small palette named with the catalogue's colour words (CIE Lab distance).
"""

import numpy as np
from PIL import Image

# name -> sRGB of a typical product in that colour
PALETTE = {
    "black": (22, 22, 24),
    "charcoal": (62, 62, 68),
    "grey": (128, 128, 130),
    "silver": (190, 190, 195),
    "white": (245, 245, 245),
    "cream": (238, 228, 200),
    "beige": (214, 196, 165),
    "khaki": (180, 165, 115),
    "tan": (196, 146, 98),
    "brown": (110, 70, 40),
    "maroon": (110, 22, 38),
    "red": (200, 32, 42),
    "pink": (238, 150, 180),
    "magenta": (195, 40, 135),
    "purple": (105, 50, 130),
    "lavender": (180, 160, 210),
    "navy blue": (30, 38, 78),
    "blue": (45, 95, 185),
    "teal": (20, 118, 120),
    "turquoise blue": (60, 190, 205),
    "green": (40, 135, 65),
    "olive": (105, 108, 45),
    "yellow": (240, 210, 45),
    "mustard": (200, 158, 40),
    "orange": (238, 128, 35),
    "peach": (245, 190, 160),
}

_NAMES = list(PALETTE)


def _lab(rgb):
    """sRGB uint8 [...,3] -> CIE Lab (D65) float [...,3]."""
    c = rgb.astype(np.float64) / 255.0
    c = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = c @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    return np.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])], -1)


_PAL_LAB = _lab(np.array([PALETTE[n] for n in _NAMES], dtype=np.uint8))


def dominant(im, max_colours=2, min_share=0.2):
    """Returns [(name, share of the product's pixels)], most common first (at least one)."""
    small = im.convert("RGB")
    small.thumbnail((96, 96), Image.BILINEAR)
    px = np.asarray(small, dtype=np.uint8)
    lab = _lab(px)
    h, w = lab.shape[:2]
    border = np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]])
    bg = np.median(border, axis=0)
    uniform = np.median(np.linalg.norm(border - bg, axis=1)) < 6.0
    flat = lab.reshape(-1, 3)
    if uniform:
        fg = flat[np.linalg.norm(flat - bg, axis=1) > 14.0]
        if len(fg) < 0.03 * len(flat):  # a product in the background's colour
            fg = flat
    else:
        fg = flat
    d = np.linalg.norm(fg[:, None, :] - _PAL_LAB[None, :, :], axis=2)
    votes = np.bincount(np.argmin(d, axis=1), minlength=len(_NAMES)).astype(np.float64)
    share = votes / votes.sum()
    order = np.argsort(-share)
    out = [(_NAMES[order[0]], float(share[order[0]]))]
    for i in order[1:max_colours]:
        if share[i] >= min_share:
            out.append((_NAMES[i], float(share[i])))
    return out
