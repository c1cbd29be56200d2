"""Table rows from OCR boxes: boxes grouped into lines by y, cells into columns by x, the header
line naming the columns. The answer contract (schema "vlproxy_table_rows"):

    {"rows":[{"item":"...","attributes":{"colour":"...","size":"...","brand":"..."},
              "quantity":N,"price":N}]}

attributes holds only the columns the table has and non-empty cells; quantity and price are left
out when the cell is empty or not a number.
"""

import math
import re
import threading
import unicodedata
import time

HEADERS = {
    "item": ("item", "items", "name", "product", "products", "description", "article", "goods"),
    "colour": ("colour", "color", "colours", "colors"),
    "size": ("size", "sizes"),
    "brand": ("brand", "make", "manufacturer"),
    "quantity": ("qty", "quantity", "quantities", "pcs", "units", "count"),
    "price": ("price", "unitprice", "rate", "price/unit", "mrp"),
}
_HEADER_OF = {w: col for col, words in HEADERS.items() for w in words}
_NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?|[-+]?\.\d+")


class Box:
    __slots__ = ("x0", "y0", "x1", "y1", "text", "score")

    def __init__(self, pts, text, score):
        xs = [p[0] for p in pts]
        ys = [p[1] for p in pts]
        self.x0, self.x1, self.y0, self.y1 = min(xs), max(xs), min(ys), max(ys)
        # the recogniser (trained on Chinese and English) may answer full-width forms: "９" -> "9"
        self.text, self.score = unicodedata.normalize("NFKC", text).strip(), float(score)

    @property
    def xc(self):
        return (self.x0 + self.x1) / 2

    @property
    def yc(self):
        return (self.y0 + self.y1) / 2

    @property
    def h(self):
        return self.y1 - self.y0


def _group(boxes, tol, skew):
    sin, cos = math.sin(skew), math.cos(skew)

    def level(b):  # the centre's y with the skew rotated away
        return b.yc * cos - b.xc * sin

    out = []
    for b in sorted(boxes, key=level):
        y = level(b)
        if out and abs(y - out[-1]["y"]) <= tol:
            ln = out[-1]
            ln["boxes"].append(b)
            ln["y"] = sum(level(x) for x in ln["boxes"]) / len(ln["boxes"])
        else:
            out.append({"y": y, "boxes": [b]})
    return [sorted(ln["boxes"], key=lambda b: b.x0) for ln in out]


SKEW_STEPS = [math.radians(d / 10.0) for d in range(-40, 41)]  # -4..4 degrees


def lines(boxes):
    """Groups boxes into text lines by the y of their centres, measured across the page's skew:
    the angle in -4..4 degrees that gives the fewest lines, where a line holding two boxes that
    overlap in x (cells of different rows) counts as a penalty; the smallest angle among ties.
    Each line is sorted by x."""
    boxes = [b for b in boxes if b.text]
    if not boxes:
        return []
    hs = sorted(b.h for b in boxes)
    tol = max(hs[len(hs) // 2] * 0.5, 2.0)
    best, best_cost = None, None
    for a in sorted(SKEW_STEPS, key=abs):
        g = _group(boxes, tol, a)
        overlaps = sum(1 for ln in g for p, q in zip(ln, ln[1:]) if q.x0 < p.x1 - 0.25 * min(p.x1 - p.x0, q.x1 - q.x0))
        cost = len(g) + 2 * overlaps
        if best is None or cost < best_cost:
            best, best_cost = g, cost
    return best


def header_key(text):
    t = re.sub(r"[^a-z/]", "", text.lower())
    if t in _HEADER_OF:
        return _HEADER_OF[t]
    for w, col in _HEADER_OF.items():  # "unit price", "price (inr)", "item name"
        if len(w) >= 4 and w in t:
            return col
    return None


def number(text):
    m = _NUMBER.search(text.replace(" ", ""))
    if not m:
        return None
    s = m.group(0).replace(",", "")
    try:
        v = float(s)
    except ValueError:
        return None
    return int(v) if v.is_integer() else v


def _find_header(lns):
    for i, ln in enumerate(lns):
        keys = [header_key(b.text) for b in ln]
        if sum(k is not None for k in keys) >= 2 and "item" in keys:
            return i, [(k, b) for k, b in zip(keys, ln) if k is not None]
    return None, None


_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")


def _cell(parts):
    """Joins a cell's texts; the recogniser drops some spaces ("WhiteSneakers"): put them back at
    lower-to-upper case changes."""
    return _CAMEL.sub(" ", " ".join(parts)).strip()


def _row(cells):
    item = _cell(cells.get("item", []))
    if not item or item.lower().rstrip(":") in ("total", "subtotal", "grand total", "sum"):
        return None
    row = {"item": item, "attributes": {}}
    for a in ("colour", "size", "brand"):
        v = _cell(cells.get(a, []))
        if v:
            row["attributes"][a] = v
    q = number(" ".join(cells.get("quantity", [])))
    if q is not None:
        row["quantity"] = int(q) if isinstance(q, int) else q
    p = number(" ".join(cells.get("price", [])))
    if p is not None:
        row["price"] = p
    return row


def rows(boxes):
    """Parses OCR boxes into the contract's rows (a list of dicts)."""
    lns = lines(boxes)
    hi, header = _find_header(lns)
    out = []
    if header is None:
        # no header: the longest wordy cell is the item, an integer the quantity, a decimal the price
        for ln in lns:
            texts = [b.text for b in ln]
            words = [t for t in texts if number(t) is None]
            nums = [number(t) for t in texts if number(t) is not None]
            if not words or not nums:
                continue
            cells = {"item": [max(words, key=len)]}
            ints = [n for n in nums if isinstance(n, int)]
            if ints:
                cells["quantity"] = [str(ints[0])]
            if len(nums) > 1:
                cells["price"] = [str(nums[-1])]
            r = _row(cells)
            if r:
                out.append(r)
        return out
    # column boundaries halfway between neighbouring header centres
    cols = sorted(((b.xc, k) for k, b in header), key=lambda c: c[0])
    bounds = [(cols[i][0] + cols[i + 1][0]) / 2 for i in range(len(cols) - 1)]
    for ln in lns[hi + 1:]:
        # a line with a box across a column boundary is no table row (a note, a footer)
        if any(b.x0 < x - 0.2 * (b.x1 - b.x0) and b.x1 > x + 0.2 * (b.x1 - b.x0) for b in ln for x in bounds):
            continue
        cells = {}
        for b in ln:
            j = sum(b.xc > x for x in bounds)
            cells.setdefault(cols[j][1], []).append(b.text)
        r = _row(cells)
        if r:
            out.append(r)
    return out


class OCR:
    """RapidOCR, loaded on first use (or by preload() in the background)."""

    def __init__(self, threads=1):
        self.threads = threads
        self._engine = None
        self._lock = threading.Lock()
        self._run = threading.Lock()  # one page at a time: RapidOCR's pipeline keeps state
        self.load_error = None
        self._preload = None

    def engine(self):
        with self._lock:
            if self._engine is None:
                from rapidocr_onnxruntime import RapidOCR
                self._engine = RapidOCR(intra_op_num_threads=self.threads, inter_op_num_threads=1)
            return self._engine

    def preload(self):
        def run():
            try:
                self.engine()
            except Exception as e:  # reported on the first OCR request
                self.load_error = e
        self._preload = threading.Thread(target=run, name="ocr-preload", daemon=True)
        self._preload.start()

    def wait(self, timeout):
        """Waits for a background preload (onnxruntime aborts the process if it exits mid-load)."""
        if self._preload is not None:
            self._preload.join(timeout)

    def boxes(self, im):
        """im: RGB PIL image -> ([Box], cpu_ms)."""
        eng = self.engine()
        with self._run:
            return self._boxes(eng, im)

    def _boxes(self, eng, im):
        t0 = time.process_time()
        # no 0/180 degree text classifier: pages come upright (a scan's skew is small), and on a
        # lone digit it flips "9" into "6"
        result, _ = eng(im, use_cls=False)
        cpu_ms = (time.process_time() - t0) * 1000.0
        return [Box(pts, text, score) for pts, text, score in (result or [])], cpu_ms
