"""Search keywords for a product photo: the network's top labels mapped to catalogue words, plus
the photo's dominant colours, shaped as the JSON vlproxy's rewriter asks for."""

import numpy as np

from . import colours, vocab

TOP_LABELS = 10
MIN_WORD_SCORE = 0.04


def softmax(logits):
    z = logits.astype(np.float64)
    z = np.exp(z - z.max())
    return z / z.sum()


def describe(probs, im):
    """Returns a dict: words [(word, score)], colours [(name, share)], material, top [(index, p)]."""
    top = np.argsort(-probs)[:TOP_LABELS]
    scores = {}
    order = []
    material = None
    for i in top:
        p = float(probs[i])
        for rank, w in enumerate(vocab.WORDS_BY_INDEX.get(int(i), [])):
            if w not in scores:
                scores[w] = 0.0
                order.append(w)
            scores[w] += p if rank == 0 else p / 2
        if material is None and int(i) in vocab.MATERIAL_BY_INDEX and p >= 0.05:
            material = vocab.MATERIAL_BY_INDEX[int(i)]
    words = sorted(((w, s) for w, s in scores.items() if s >= MIN_WORD_SCORE),
                   key=lambda ws: (-ws[1], order.index(ws[0])))
    return {
        "words": words,
        "colours": colours.dominant(im),
        "material": material,
        "top": [(int(i), float(probs[i])) for i in top[:5]],
    }


def answer(desc, max_keywords, want_attributes):
    """The rewriter's schema: {"keywords":[...], "category"?, "attributes"?: {...}}."""
    words = [w for w, _ in desc["words"]]
    cols = [c for c, _ in desc["colours"]]
    kws = []
    if words:
        kws.append("%s %s" % (cols[0], words[0]))
        kws.append(words[0])
        if len(cols) > 1:
            kws.append("%s %s" % (cols[1], words[0]))
        kws.extend(words[1:])
        kws.extend(cols)
    else:
        # nothing in the photo maps to a product word: say the colours and what the network saw
        kws.extend(cols)
        kws.append(vocab.LABELS[desc["top"][0][0]])
    seen, out = set(), []
    for k in kws:
        if k not in seen:
            seen.add(k)
            out.append(k)
    out = out[:max(1, max_keywords)]
    res = {"keywords": out}
    if want_attributes:
        if words:
            res["category"] = words[0]
        attrs = {"colour": cols[0]}
        if desc["material"]:
            attrs["material"] = desc["material"]
        res["attributes"] = attrs
    return res
