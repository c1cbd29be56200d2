package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// CatalogueDir returns ../shared/data/fashion relative to the repository root: the nearest
// directory at or above the working directory (a package directory under go test) that holds
// go.mod. It reports an error when no go.mod is found or the catalogue's styles.csv is not there.
// The returned path is the one tests read the catalogue from, in place; never an absolute
// machine-specific path.
func CatalogueDir() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("cannot find the repository root: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if fileExists(filepath.Join(d, "go.mod")) {
			dir := filepath.Join(d, "..", "shared", "data", "fashion")
			if _, err := os.Stat(filepath.Join(dir, "styles.csv")); err != nil {
				return dir, fmt.Errorf("cannot find the fashion catalogue at ../shared/data/fashion from the repository root %s: %w", d, err)
			}
			return dir, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("cannot find the repository root (go.mod) above the working directory")
		}
	}
}

// Catalogue returns CatalogueDir for a test. When the catalogue is missing the test is skipped,
// except under CI=true, where a missing catalogue fails it: CI must exercise what it claims to.
func Catalogue(tb testing.TB) string {
	tb.Helper()
	dir, err := CatalogueDir()
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("testenv: %v (CI=true: the catalogue is required)", err)
		}
		tb.Skipf("testenv: %v", err)
	}
	return dir
}

// CataloguePhotos returns up to max photo paths from the catalogue's images/ whose base name
// matches pattern (a filepath.Match pattern such as "1*.jpg"), sorted. It skips or fails like
// Catalogue when the catalogue is missing, and fails when no photo matches.
func CataloguePhotos(tb testing.TB, pattern string, max int) []string {
	tb.Helper()
	dir := Catalogue(tb)
	files, err := filepath.Glob(filepath.Join(dir, "images", pattern))
	if err != nil {
		tb.Fatalf("testenv: cannot list catalogue photos %q: %v", pattern, err)
	}
	if len(files) == 0 {
		tb.Fatalf("testenv: no catalogue photo matches images/%s in %s", pattern, dir)
	}
	if max > 0 && len(files) > max {
		files = files[:max]
	}
	return files
}

// OptionalCatalogue is Catalogue for tests that can do without the catalogue (it only adds
// seeds or realism): ok is false when it is missing, except under CI=true, where a missing
// catalogue fails the test.
func OptionalCatalogue(tb testing.TB) (dir string, ok bool) {
	tb.Helper()
	dir, err := CatalogueDir()
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("testenv: %v (CI=true: the catalogue is required)", err)
		}
		return "", false
	}
	return dir, true
}
