package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The catalogue is found through ../shared from the module root, whatever package directory
// the test runs in, and a tree without it is an error that names the place looked at.
func TestCatalogueDir(t *testing.T) {
	root := t.TempDir()
	repo := filepath.Join(root, "repo")
	pkg := filepath.Join(repo, "a", "b")
	cat := filepath.Join(root, "shared", "data", "fashion")
	for _, d := range []string{pkg, cat} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(repo, "go.mod"), []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(pkg)
	if _, err := CatalogueDir(); err == nil || !strings.Contains(err.Error(), "../shared/data/fashion") {
		t.Fatalf("without styles.csv: err = %v, want one naming ../shared/data/fashion", err)
	}
	if err := os.WriteFile(filepath.Join(cat, "styles.csv"), []byte("id\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := CatalogueDir()
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := filepath.EvalSymlinks(cat); evalOrSelf(got) != want {
		t.Fatalf("CatalogueDir = %q, want %q", got, want)
	}
	t.Chdir(root) // no go.mod at or above (the temp dir is outside any module)
	if _, err := CatalogueDir(); err == nil {
		t.Fatalf("outside a module: no error")
	}
}

func evalOrSelf(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}

// Under CI=true a missing catalogue fails the test instead of skipping it.
func TestCatalogueRequiredUnderCI(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv("CI", "true")
	r := &recordTB{TB: t}
	func() {
		defer func() { recover() }() // Fatalf of recordTB panics to stop like FailNow
		Catalogue(r)
	}()
	if !r.failed || r.skipped {
		t.Fatalf("CI=true: failed=%v skipped=%v, want a failure", r.failed, r.skipped)
	}
	t.Setenv("CI", "")
	r = &recordTB{TB: t}
	func() {
		defer func() { recover() }()
		Catalogue(r)
	}()
	if r.failed || !r.skipped {
		t.Fatalf("no CI: failed=%v skipped=%v, want a skip", r.failed, r.skipped)
	}
}

// recordTB records Fatalf and Skipf instead of ending the real test.
type recordTB struct {
	testing.TB
	failed, skipped bool
}

func (r *recordTB) Helper() {}
func (r *recordTB) Fatalf(string, ...any) {
	r.failed = true
	panic("fatal")
}
func (r *recordTB) Skipf(string, ...any) {
	r.skipped = true
	panic("skip")
}
