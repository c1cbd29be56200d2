package bench

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// FashionProduct is one row of the fashion catalogue's styles.csv.
type FashionProduct struct {
	ID, Gender, MasterCategory, SubCategory, ArticleType, BaseColour, Season, Usage, Title string
	Year                                                                                   int
	HasImage                                                                               bool // a photo is in images/ (subset_ids.txt)
}

// FashionMappings is the index body used for the fashion catalogue: attributes as text with a
// keyword sub-field, the display name as "title".
const FashionMappings = `{
  "settings": {"number_of_shards": 1, "number_of_replicas": 0},
  "mappings": {"properties": {
    "id": {"type": "keyword"},
    "title": {"type": "text"},
    "gender": {"type": "text", "fields": {"keyword": {"type": "keyword"}}},
    "masterCategory": {"type": "text", "fields": {"keyword": {"type": "keyword"}}},
    "subCategory": {"type": "text", "fields": {"keyword": {"type": "keyword"}}},
    "articleType": {"type": "text", "fields": {"keyword": {"type": "keyword"}}},
    "baseColour": {"type": "text", "fields": {"keyword": {"type": "keyword"}}},
    "season": {"type": "keyword"},
    "usage": {"type": "keyword"},
    "year": {"type": "integer"},
    "image": {"type": "keyword", "index": false}
  }}
}`

// FindFashionDir returns dir if set, else ../shared/data/fashion relative to the repository root
// (the nearest parent of the working directory holding go.mod).
func FindFashionDir(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, "..", "shared", "data", "fashion"), nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("cannot find the repository root (go.mod) above the working directory: pass -fashion-dir")
		}
	}
}

// LoadFashion reads styles.csv and subset_ids.txt from dir.
func LoadFashion(dir string) ([]FashionProduct, error) {
	f, err := os.Open(filepath.Join(dir, "styles.csv"))
	if err != nil {
		return nil, fmt.Errorf("cannot open the fashion catalogue: %w", err)
	}
	defer f.Close()
	withImage := map[string]bool{}
	if sf, err := os.Open(filepath.Join(dir, "subset_ids.txt")); err == nil {
		sc := bufio.NewScanner(sf)
		for sc.Scan() {
			if s := strings.TrimSpace(sc.Text()); s != "" {
				withImage[s] = true
			}
		}
		sf.Close()
	}
	return ParseFashion(f, filepath.Join(dir, "styles.csv"), withImage)
}

// ParseFashion parses styles.csv content.
func ParseFashion(r io.Reader, name string, withImage map[string]bool) ([]FashionProduct, error) {
	cr := csv.NewReader(r)
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%s:1: cannot read header: %w", name, err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	for _, need := range []string{"id", "gender", "articleType", "baseColour", "productDisplayName"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("%s:1: no column %q", name, need)
		}
	}
	get := func(rec []string, c string) string {
		if i, ok := col[c]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	var out []FashionProduct
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		p := FashionProduct{ID: get(rec, "id"), Gender: get(rec, "gender"), MasterCategory: get(rec, "masterCategory"),
			SubCategory: get(rec, "subCategory"), ArticleType: get(rec, "articleType"), BaseColour: get(rec, "baseColour"),
			Season: get(rec, "season"), Usage: get(rec, "usage"), Title: get(rec, "productDisplayName")}
		p.Year, _ = strconv.Atoi(get(rec, "year"))
		p.HasImage = withImage[p.ID]
		if p.ID == "" {
			line, _ := cr.FieldPos(0)
			return nil, fmt.Errorf("%s:%d: empty id", name, line)
		}
		out = append(out, p)
	}
	return out, nil
}

// FashionWithPhotos keeps the products that have a photo.
func FashionWithPhotos(ps []FashionProduct) []FashionProduct {
	var out []FashionProduct
	for _, p := range ps {
		if p.HasImage {
			out = append(out, p)
		}
	}
	return out
}

// FashionDocs turns products into index documents.
func FashionDocs(ps []FashionProduct) []Doc {
	docs := make([]Doc, 0, len(ps))
	for _, p := range ps {
		m := map[string]any{"id": p.ID, "title": p.Title, "gender": p.Gender, "masterCategory": p.MasterCategory,
			"subCategory": p.SubCategory, "articleType": p.ArticleType, "baseColour": p.BaseColour,
			"season": p.Season, "usage": p.Usage}
		if p.Year > 0 {
			m["year"] = p.Year
		}
		if p.HasImage {
			m["image"] = "images/" + p.ID + ".jpg"
		}
		for k, v := range m {
			if v == "" {
				delete(m, k)
			}
		}
		src, _ := json.Marshal(m)
		docs = append(docs, Doc{ID: p.ID, Source: src})
	}
	return docs
}

// FashionTextQueries picks n distinct "{gender} {baseColour} {articleType}" queries (triples with
// at least 3 products, a seeded sample) and judges every product: gain 3 when all three match,
// 2 when articleType and colour match, 1 when articleType matches, else 0.
func FashionTextQueries(ps []FashionProduct, n int, seed uint64) ([]EvalQuery, Qrels) {
	type triple struct{ g, c, a string }
	count := map[triple]int{}
	for _, p := range ps {
		if p.Gender != "" && p.BaseColour != "" && p.ArticleType != "" {
			count[triple{p.Gender, p.BaseColour, p.ArticleType}]++
		}
	}
	var cands []triple
	for t, c := range count {
		if c >= 3 {
			cands = append(cands, t)
		}
	}
	sort.Slice(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		return a.a+"\x00"+a.c+"\x00"+a.g < b.a+"\x00"+b.c+"\x00"+b.g
	})
	rng := rand.New(rand.NewPCG(seed, 0xfa5))
	rng.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
	if n > len(cands) {
		n = len(cands)
	}
	var qs []EvalQuery
	qrels := Qrels{}
	for i, t := range cands[:n] {
		id := fmt.Sprintf("text-%03d", i+1)
		qs = append(qs, EvalQuery{ID: id, Text: t.g + " " + t.c + " " + t.a})
		j := map[string]int{}
		for _, p := range ps {
			g := 0
			if p.ArticleType == t.a {
				g = 1
				if p.BaseColour == t.c {
					g = 2
					if p.Gender == t.g {
						g = 3
					}
				}
			}
			j[p.ID] = g
		}
		qrels[id] = j
	}
	return qs, qrels
}

// FashionImageQueries picks n products with photos (seeded) as image queries; the product itself
// is excluded from the results and from the judgments. Gain 2 for the same articleType and
// baseColour, 1 for the same articleType, else 0. imageDir is where images/<id>.jpg live.
func FashionImageQueries(ps []FashionProduct, n int, seed uint64, imageDir string) ([]EvalQuery, Qrels) {
	var cands []FashionProduct
	for _, p := range ps {
		if p.HasImage {
			cands = append(cands, p)
		}
	}
	rng := rand.New(rand.NewPCG(seed, 0x1a6e))
	rng.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
	if n > len(cands) {
		n = len(cands)
	}
	var qs []EvalQuery
	qrels := Qrels{}
	for _, q := range cands[:n] {
		id := "image-" + q.ID
		qs = append(qs, EvalQuery{ID: id, ImageFile: filepath.Join(imageDir, "images", q.ID+".jpg"), Exclude: []string{q.ID}})
		j := map[string]int{}
		for _, p := range ps {
			if p.ID == q.ID {
				continue
			}
			g := 0
			if p.ArticleType == q.ArticleType {
				g = 1
				if p.BaseColour == q.BaseColour {
					g = 2
				}
			}
			j[p.ID] = g
		}
		qrels[id] = j
	}
	return qs, qrels
}

// WriteQuerySet writes queries as NDJSON and their qrels in TREC format. With positiveOnly, only
// gains ≥ 1 are written (every product is judged, so the other lines only matter to judged-only
// metrics, and they make the file 10–20× larger).
func WriteQuerySet(queriesPath, qrelsPath string, qs []EvalQuery, qr Qrels, positiveOnly bool) error {
	qf, err := os.Create(queriesPath)
	if err != nil {
		return fmt.Errorf("cannot create %s: %w", queriesPath, err)
	}
	enc := json.NewEncoder(qf)
	for _, q := range qs {
		if err := enc.Encode(q); err != nil {
			qf.Close()
			return fmt.Errorf("cannot write %s: %w", queriesPath, err)
		}
	}
	if err := qf.Close(); err != nil {
		return err
	}
	rf, err := os.Create(qrelsPath)
	if err != nil {
		return fmt.Errorf("cannot create %s: %w", qrelsPath, err)
	}
	order := make([]string, len(qs))
	for i, q := range qs {
		order[i] = q.ID
	}
	err = WriteQrels(rf, order, qr, func(q string) []string {
		var ids []string
		for d, g := range qr[q] {
			if g >= 1 || !positiveOnly {
				ids = append(ids, d)
			}
		}
		sort.Strings(ids)
		return ids
	})
	if cerr := rf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", qrelsPath, err)
	}
	return nil
}
