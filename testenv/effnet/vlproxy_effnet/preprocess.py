"""Image decoding and the preprocessing that reproduces the reference features."""

import io

import numpy as np
from PIL import Image

from .net import IMAGE_SIZE

MAX_PIXELS = 40_000_000


class BadImage(ValueError):
    pass


def decode(data):
    """Decodes image bytes into an RGB PIL image, refusing decompression bombs."""
    try:
        im = Image.open(io.BytesIO(data))
        w, h = im.size
        if w <= 0 or h <= 0 or w * h > MAX_PIXELS:
            raise BadImage("cannot decode image: %dx%d pixels is over the limit" % (w, h))
        im.load()
    except BadImage:
        raise
    except Exception as e:  # Pillow raises many types for corrupt input
        raise BadImage("cannot decode image: %s" % e) from e
    return im.convert("RGB")


def to_tensor(im):
    """RGB; pad centred onto a white square of side max(w, h); bicubic 224x224; x/127.5 - 1; CHW."""
    w, h = im.size
    side = max(w, h)
    sq = Image.new("RGB", (side, side), (255, 255, 255))
    sq.paste(im, ((side - w) // 2, (side - h) // 2))
    sq = sq.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BICUBIC)
    x = np.asarray(sq, dtype=np.float32) / 127.5 - 1.0
    return np.ascontiguousarray(x.transpose(2, 0, 1))
