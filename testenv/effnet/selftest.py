"""Self-test of the model server's Python side, without HTTP:

  .cache/effnet/venv/bin/python testenv/effnet/selftest.py

1. the torch reference (../shared/reference/effnet-lite0-reference.json): top-5 labels and pooled
   features within 1e-3 relative on its eight photos;
2. RapidOCR on a price table rendered here with Pillow (known rows, slightly rotated);
3. the request handlers on a bounded number of random and mutated requests: every answer is a
   result or an APIError (a client error), never another exception.
Exits non-zero on the first failure.
"""

import base64
import io
import json
import math
import os
import random
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

from vlproxy_effnet import keywords, preprocess, server, tables, vocab  # noqa: E402

SHARED = os.path.join(ROOT, "..", "shared")


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def check_reference(app):
    with open(os.path.join(SHARED, "reference", "effnet-lite0-reference.json")) as f:
        ref = json.load(f)
    cpu = []
    for img in ref["images"]:
        with open(os.path.join(SHARED, "data", "fashion", "images", img["id"] + ".jpg"), "rb") as f:
            im = preprocess.decode(f.read())
        feats, logits, ms = app.infer([im])
        cpu.append(ms)
        f0 = feats[0].astype(np.float64)
        p = keywords.softmax(logits[0])
        top = [int(i) for i in np.argsort(-p)[:5]]
        want = [t["index"] for t in img["top5"]]
        if top != want:
            fail("%s: top-5 %s, reference %s" % (img["id"], top, want))
        if [vocab.LABELS[i] for i in top] != [t["label"] for t in img["top5"]]:
            fail("%s: labels %s differ from the reference's" % (img["id"], [vocab.LABELS[i] for i in top]))
        l2 = float(np.linalg.norm(f0))
        if abs(l2 - img["feature_l2"]) > 1e-3 * img["feature_l2"]:
            fail("%s: feature L2 %.5f, reference %.5f" % (img["id"], l2, img["feature_l2"]))
        for i, w in enumerate(img["feature_first8"]):
            if abs(f0[i] - w) > 1e-3 * max(abs(w), 0.01) + 1e-5:
                fail("%s: feature[%d] %.6f, reference %.5f" % (img["id"], i, f0[i], w))
    print("reference: 8/8 photos match (top-5 labels, features within 1e-3); %.1f ms CPU per photo (median)"
          % sorted(cpu)[len(cpu) // 2])


TABLE = [
    ("Product", "Color", "Size", "Brand", "Quantity", "Unit price"),
    ("Cotton T-shirt", "Red", "M", "Puma", "2", "499.00"),
    ("Denim Jeans", "Blue", "32", "Levis", "1", "1,299.00"),
    ("Leather Belt", "Brown", "L", "Woodland", "3", "349.50"),
    ("Running Shoes", "Black", "9", "Nike", "1", "2999"),
    ("Total", "", "", "", "7", "5795.50"),
]
WANT_ROWS = [
    {"item": "Cotton T-shirt", "attributes": {"colour": "Red", "size": "M", "brand": "Puma"}, "quantity": 2, "price": 499},
    {"item": "Denim Jeans", "attributes": {"colour": "Blue", "size": "32", "brand": "Levis"}, "quantity": 1, "price": 1299},
    {"item": "Leather Belt", "attributes": {"colour": "Brown", "size": "L", "brand": "Woodland"}, "quantity": 3,
     "price": 349.5},
    {"item": "Running Shoes", "attributes": {"colour": "Black", "size": "9", "brand": "Nike"}, "quantity": 1, "price": 2999},
]


def render_table(rows, angle):
    font = ImageFont.load_default(size=26)
    xs = [40, 330, 520, 640, 860, 1040, 1220]
    rh = 72
    im = Image.new("RGB", (1260, 80 + rh * len(rows)), "white")
    d = ImageDraw.Draw(im)
    for r, row in enumerate(rows):
        y = 40 + r * rh
        for c, text in enumerate(row):
            d.text((xs[c] + 12, y + 22), text, fill="black", font=font)
    for r in range(len(rows) + 1):
        d.line([(xs[0], 40 + r * rh), (xs[-1], 40 + r * rh)], fill="black", width=2)
    for x in xs:
        d.line([(x, 40), (x, 40 + rh * len(rows))], fill="black", width=2)
    return im.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor="white")


ORDER = [("Navy Blue", "Shirt", 2, 899), ("White", "Sneakers", 1, 2499), ("Black", "Handbag", 1, 1799),
         ("Grey", "Track Pants", 3, 699), ("Pink", "Kurta", 2, 1099), ("Brown", "Wallet", 5, 499),
         ("Red", "Saree", 1, 3299), ("Olive", "Jacket", 1, 2999)]


def render_page(angle):
    """An A4 page at 200 dpi: a title, a three-column order table, a footer note."""
    im = Image.new("RGB", (1654, 2339), "white")
    d = ImageDraw.Draw(im)
    d.text((120, 120), "Price list - Spring order, Shop 42", fill="black", font=ImageFont.load_default(size=44))
    f = ImageFont.load_default(size=32)
    xs, rh, y0 = [120, 900, 1150, 1530], 90, 260
    rows = [("Item name", "Qty", "Price (INR)")] + [("%s %s" % (c, p), str(q), "%d.00" % pr) for c, p, q, pr in ORDER]
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            d.text((xs[c] + 16, y0 + r * rh + 28), text, fill="black", font=f)
    for r in range(len(rows) + 1):
        d.line([(xs[0], y0 + r * rh), (xs[-1], y0 + r * rh)], fill="black", width=3)
    for x in xs:
        d.line([(x, y0), (x, y0 + rh * len(rows))], fill="black", width=3)
    d.text((120, y0 + rh * len(rows) + 60), "Thank you for your order. Payment within 30 days.", fill="black", font=f)
    return im.rotate(angle, resample=Image.BICUBIC, fillcolor="white").convert("L").convert("RGB")


def check_table(app):
    check_page(app, "table", render_table(TABLE, 1.5), WANT_ROWS, "(the total line left out)")
    want = [{"item": "%s %s" % (c, p), "attributes": {}, "quantity": q, "price": pr} for c, p, q, pr in ORDER]
    check_page(app, "A4 page", render_page(-0.8), want, "(title and footer left out)")


def check_page(app, name, im, want_rows, note):
    buf = io.BytesIO()
    im.save(buf, "PNG")
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    app.ocr.wait(120)
    t0 = time.monotonic()
    out = app.chat({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": uri}}]}],
                    "response_format": {"type": "json_schema", "json_schema": {"name": server.TABLE_SCHEMA}}})
    got = json.loads(out["choices"][0]["message"]["content"])["rows"]
    exact = sum(1 for g, w in zip(got, want_rows) if g == w)
    if exact != len(want_rows) or len(got) != len(want_rows):
        fail("%s rows: %d of %d exact, got %s" % (name, exact, len(want_rows), json.dumps(got)))
    print("%s: %d/%d rows exact %s; %.0f ms CPU, %.1f s wall for the page"
          % (name, exact, len(want_rows), note, out["metrics"]["cpu_ms"], time.monotonic() - t0))


def mutate(rng, v, depth=0):
    """A random variation of a JSON value."""
    r = rng.random()
    if depth > 4 or r < 0.15:
        return rng.choice([None, True, 0, -1, 1.5, 10 ** 12, "", "x", "data:image/png;base64,AAAA",
                           "data:image/jpeg;base64,%%", [], {}])
    if isinstance(v, dict):
        v = dict(v)
        for k in list(v):
            if rng.random() < 0.3:
                v[k] = mutate(rng, v[k], depth + 1)
            elif rng.random() < 0.1:
                del v[k]
        if rng.random() < 0.1:
            v[rng.choice(["type", "url", "content", "role", "input", "messages"])] = mutate(rng, None, depth + 1)
        return v
    if isinstance(v, list):
        v = [mutate(rng, x, depth + 1) if rng.random() < 0.3 else x for x in v]
        if v and rng.random() < 0.2:
            v.append(v[0])
        return v
    return v


def check_fuzz(app, n=300):
    with open(os.path.join(SHARED, "data", "fashion", "images", "29167.jpg"), "rb") as f:
        uri = "data:image/jpeg;base64," + base64.b64encode(f.read()).decode()
    seeds = [
        ("embeddings", {"input": [uri], "encoding_format": "base64"}),
        ("embeddings", {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": uri}}]}]}),
        ("chat", {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": uri}},
                                                            {"type": "text", "text": "q"}]}],
                  "max_tokens": 64, "response_format": {"type": "json_schema", "json_schema": {
                      "name": "search_keywords", "schema": {"properties": {"keywords": {"maxItems": 4},
                                                                           "attributes": {}}}}}}),
    ]
    rng = random.Random(1)
    errors = 0
    for i in range(n):
        route, seed = seeds[i % len(seeds)]
        body = mutate(rng, seed)
        if not isinstance(body, dict):
            continue
        try:
            (app.embeddings if route == "embeddings" else app.chat)(body)
        except server.APIError:
            errors += 1
        except Exception as e:
            fail("%s %s: %r" % (route, json.dumps(body)[:300], e))
    print("fuzz: %d mutated requests, %d client errors, no other exception" % (n, errors))


def check_rows_parser(n=500):
    """tables.rows on synthetic boxes: a known grid, then random boxes (must never raise)."""
    def box(x, y, w, text):
        return tables.Box([(x, y), (x + w, y), (x + w, y + 30), (x, y + 30)], text, 0.99)
    grid = [["Item", "Size", "Qty", "Price"], ["Linen Shirt", "XL", "2", "1,050"], ["Socks", "", "12", "99.5"]]
    boxes = [box(100 + 300 * c + 3 * r, 100 + 60 * r - 0.02 * (300 * c), 120, t)
             for r, row in enumerate(grid) for c, t in enumerate(row) if t]
    got = tables.rows(boxes)
    want = [{"item": "Linen Shirt", "attributes": {"size": "XL"}, "quantity": 2, "price": 1050},
            {"item": "Socks", "attributes": {}, "quantity": 12, "price": 99.5}]
    if got != want:
        fail("rows parser: got %s, want %s" % (got, want))
    rng = random.Random(2)
    words = ["Item", "Qty", "Price", "Colour", "Brand", "Size", "Total", "12", "1,299.00", "x", "", "  ", "９", "-3",
             ".5", "1e9", "Ｐｒｉｃｅ", "\u0000", "name/product"]
    for _ in range(n):
        bs = []
        for _ in range(rng.randrange(0, 40)):
            x, y = rng.uniform(-50, 2000), rng.uniform(-50, 3000)
            w, h = rng.uniform(0, 400), rng.uniform(0, 80)
            bs.append(tables.Box([(x, y), (x + w, y), (x + w, y + h), (x, y + h)], rng.choice(words), rng.random()))
        try:
            tables.rows(bs)
        except Exception as e:
            fail("rows parser raised %r on %d random boxes" % (e, len(bs)))
    print("rows parser: known grid exact; %d random box sets, no exception" % n)


def main():
    args = server.parse_args(["--no-ocr-preload"])
    app = server.App(args)
    check_reference(app)
    check_rows_parser()
    check_fuzz(app)
    check_table(app)
    print("ok")


if __name__ == "__main__":
    main()
