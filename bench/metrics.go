package bench

import (
	"math"
	"math/rand/v2"
	"sort"
)

// Qrels holds graded judgments: query id → document id → gain. A judged document with gain ≤ 0
// is judged non-relevant; a document absent from the map is unjudged.
type Qrels map[string]map[string]int

// Relevant counts the judged documents of query q with gain ≥ 1 (trec_eval's num_rel).
func (qr Qrels) Relevant(q string) int {
	n := 0
	for _, g := range qr[q] {
		if g >= 1 {
			n++
		}
	}
	return n
}

// RankedDoc is one retrieved document.
type RankedDoc struct {
	ID    string  `json:"id"`
	Score float64 `json:"score"`
}

// TrecOrder sorts a run as trec_eval does: by score descending, ties broken by document id
// descending (lexicographically), regardless of the order the engine returned them in.
func TrecOrder(run []RankedDoc) []RankedDoc {
	out := append([]RankedDoc(nil), run...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Score != out[j].Score {
			return out[i].Score > out[j].Score
		}
		return out[i].ID > out[j].ID
	})
	return out
}

// JudgedOnly drops unjudged documents from a ranking (the "condensed list" of Sakai), for the
// judged-only metric variants.
func JudgedOnly(run []RankedDoc, judged map[string]int) []RankedDoc {
	var out []RankedDoc
	for _, d := range run {
		if _, ok := judged[d.ID]; ok {
			out = append(out, d)
		}
	}
	return out
}

// Metrics are the per-query figures of one ranking, computed with trec_eval semantics.
type Metrics map[string]float64

// MetricNames lists the metrics computed for cutoff k, in report order. Runs are cut at k, so
// the mean of ap@k over queries is MAP@k and the mean of rr is MRR@k.
func MetricNames(k int) []string {
	s := itoa(k)
	return []string{"ndcg@" + s, "ap@" + s, "rr", "recall@" + s, "p@" + s, "ndcg'@" + s, "ap'@" + s, "p'@" + s}
}

// Evaluate computes every metric of MetricNames(k) for one query. run must already be in rank
// order (see TrecOrder). Gains of unjudged documents are 0.
func Evaluate(run []RankedDoc, judged map[string]int, k int) Metrics {
	s := itoa(k)
	numRel := 0
	for _, g := range judged {
		if g >= 1 {
			numRel++
		}
	}
	m := Metrics{}
	m["ndcg@"+s] = NDCG(run, judged, k)
	m["ap@"+s] = AveragePrecision(run, judged, numRel, k)
	m["rr"] = ReciprocalRank(run, judged)
	m["recall@"+s] = Recall(run, judged, numRel, k)
	m["p@"+s] = Precision(run, judged, k)
	cond := JudgedOnly(run, judged)
	m["ndcg'@"+s] = NDCG(cond, judged, k)
	m["ap'@"+s] = AveragePrecision(cond, judged, numRel, k)
	m["p'@"+s] = Precision(cond, judged, k)
	return m
}

// EvaluateDeep is Evaluate at cutoff k on the first k of run, plus recall@deep over the whole
// run when deep > k.
func EvaluateDeep(run []RankedDoc, judged map[string]int, k, deep int) Metrics {
	m := Evaluate(run[:min(k, len(run))], judged, k)
	if deep > k {
		numRel := 0
		for _, g := range judged {
			if g >= 1 {
				numRel++
			}
		}
		m["recall@"+itoa(deep)] = Recall(run, judged, numRel, deep)
	}
	return m
}

// NDCG is trec_eval's ndcg_cut.k: linear gain, log2(rank+1) discount, ideal ranking built from
// all judged documents of the query (not only retrieved ones). 0 when nothing is relevant.
func NDCG(run []RankedDoc, judged map[string]int, k int) float64 {
	dcg := 0.0
	for i, d := range run {
		if i >= k {
			break
		}
		if g := judged[d.ID]; g > 0 {
			dcg += float64(g) / math.Log2(float64(i)+2)
		}
	}
	var gains []int
	for _, g := range judged {
		if g > 0 {
			gains = append(gains, g)
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(gains)))
	idcg := 0.0
	for i, g := range gains {
		if i >= k {
			break
		}
		idcg += float64(g) / math.Log2(float64(i)+2)
	}
	if idcg == 0 {
		return 0
	}
	return dcg / idcg
}

// AveragePrecision is trec_eval's map_cut.k (k = len(run) gives map): the sum of precision at
// the rank of each relevant document within the top k, divided by numRel, the number of all
// relevant judged documents, retrieved or not.
func AveragePrecision(run []RankedDoc, judged map[string]int, numRel, k int) float64 {
	if numRel == 0 {
		return 0
	}
	hits, sum := 0, 0.0
	for i, d := range run {
		if i >= k {
			break
		}
		if judged[d.ID] >= 1 {
			hits++
			sum += float64(hits) / float64(i+1)
		}
	}
	return sum / float64(numRel)
}

// ReciprocalRank is 1/rank of the first relevant document, 0 if none is retrieved.
func ReciprocalRank(run []RankedDoc, judged map[string]int) float64 {
	for i, d := range run {
		if judged[d.ID] >= 1 {
			return 1 / float64(i+1)
		}
	}
	return 0
}

// Recall is the share of all relevant judged documents found in the top k.
func Recall(run []RankedDoc, judged map[string]int, numRel, k int) float64 {
	if numRel == 0 {
		return 0
	}
	return float64(relevantIn(run, judged, k)) / float64(numRel)
}

// Precision is relevant documents in the top k divided by k (trec_eval's P.k: a shorter run is
// not rewarded).
func Precision(run []RankedDoc, judged map[string]int, k int) float64 {
	if k <= 0 {
		return 0
	}
	return float64(relevantIn(run, judged, k)) / float64(k)
}

func relevantIn(run []RankedDoc, judged map[string]int, k int) int {
	n := 0
	for i, d := range run {
		if i >= k {
			break
		}
		if judged[d.ID] >= 1 {
			n++
		}
	}
	return n
}

// RandomizationTest is a paired two-sided randomization (permutation) test of the mean of
// b[i]-a[i]: each permutation flips the sign of every difference with probability 1/2.
// It returns the observed mean difference and the p-value (with the +1 correction).
func RandomizationTest(a, b []float64, permutations int, seed uint64) (meanDiff, p float64) {
	n := min(len(a), len(b))
	if n == 0 {
		return 0, 1
	}
	d := make([]float64, n)
	for i := range d {
		d[i] = b[i] - a[i]
		meanDiff += d[i]
	}
	meanDiff /= float64(n)
	obs := math.Abs(meanDiff) - 1e-12
	rng := rand.New(rand.NewPCG(seed, 0x7e57))
	extreme := 0
	for p := 0; p < permutations; p++ {
		s := 0.0
		for i := 0; i < n; i += 64 {
			bits := rng.Uint64()
			for j := i; j < min(n, i+64); j++ {
				if bits&1 == 1 {
					s -= d[j]
				} else {
					s += d[j]
				}
				bits >>= 1
			}
		}
		if math.Abs(s/float64(n)) >= obs {
			extreme++
		}
	}
	return meanDiff, float64(extreme+1) / float64(permutations+1)
}

func itoa(k int) string {
	if k == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for k > 0 {
		i--
		b[i] = byte('0' + k%10)
		k /= 10
	}
	return string(b[i:])
}
