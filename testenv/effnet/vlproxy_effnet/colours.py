"""Dominant named colours of a product photo, from its pixels (the network knows no colours).

The background is estimated from the image border and removed; the remaining pixels vote for the
nearest colour of a small palette named with the catalogue's colour words (CIE Lab distance).
"""

import collections

import numpy as np
from PIL import Image

# chromatic colours: name -> sRGB of a typical product in that colour
PALETTE = {
    "beige": (214, 196, 165),
    "brown": (110, 70, 40),
    "maroon": (95, 20, 35),
    "red": (185, 30, 45),
    "pink": (238, 150, 180),
    "purple": (105, 50, 130),
    "navy blue": (28, 32, 62),
    "blue": (55, 85, 150),
    "green": (40, 135, 65),
    "olive": (105, 108, 45),
    "yellow": (240, 210, 45),
    "mustard": (200, 158, 40),
    "orange": (238, 128, 35),
}
CHROMA_MIN = 12.0  # Lab chroma below which a (light) pixel counts as black, grey or white
CHROMATIC_SHARE = 0.3
BLACK_BELOW, WHITE_FROM = 40.0, 72.0  # Lab lightness bounds of black, grey and white
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
    """Returns [(name, share of the product's pixels)], most common first (at least one).

    A pixel is chromatic when its Lab chroma is at least CHROMA_MIN; chromatic pixels vote for
    the nearest palette colour, the others for black, grey or white by lightness.
    """
    small = im.convert("RGB")
    small.thumbnail((96, 96), Image.BILINEAR)
    lab = _lab(np.asarray(small, dtype=np.uint8))
    border = np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]])
    bg = np.median(border, axis=0)
    flat = lab.reshape(-1, 3)
    if np.median(np.linalg.norm(border - bg, axis=1)) < 6.0:
        fg = flat[np.linalg.norm(flat - bg, axis=1) > 14.0]
        if len(fg) < 0.03 * len(flat):  # a product in the background's colour
            fg = flat
    else:
        fg = flat
    chroma = np.hypot(fg[:, 1], fg[:, 2])
    # models' skin would vote for beige: drop skin-like pixels unless they are most of the product
    hue = np.degrees(np.arctan2(fg[:, 2], fg[:, 1]))
    skin = (hue > 25) & (hue < 75) & (chroma > 10) & (chroma < 40) & (fg[:, 0] > 40) & (fg[:, 0] < 85)
    if skin.mean() < 0.5:
        fg, chroma = fg[~skin], chroma[~skin]
    if len(fg) == 0:
        return [("beige", 1.0)]
    # dark colours have less chroma: the threshold scales down with lightness
    chromatic = (chroma >= np.maximum(5.0, CHROMA_MIN * np.minimum(1.0, fg[:, 0] / 50.0))) & (fg[:, 0] > 8)
    votes = collections.Counter()
    if chromatic.any():
        c = fg[chromatic]
        d = np.linalg.norm(c[:, None, :] - _PAL_LAB[None, :, :], axis=2)
        for i, k in zip(*np.unique(np.argmin(d, axis=1), return_counts=True)):
            votes[_NAMES[i]] += int(k)
    if (~chromatic).any():
        a = fg[~chromatic][:, 0]
        votes["black"] += int((a < BLACK_BELOW).sum())
        votes["grey"] += int(((a >= BLACK_BELOW) & (a < WHITE_FROM)).sum())
        votes["white"] += int((a >= WHITE_FROM).sum())
    total = sum(votes.values())
    ranked = [(n, k / total) for n, k in votes.most_common() if k > 0]
    # shading turns part of any coloured product grey or black: a product with a fair share of
    # chromatic pixels is named by its chromatic colour first
    if chromatic.mean() >= CHROMATIC_SHARE:
        ranked.sort(key=lambda nk: (nk[0] in ("black", "grey", "white"), -nk[1]))
    out = ranked[:1]
    for n, share in ranked[1:max_colours]:
        if share >= min_share:
            out.append((n, share))
    return out
