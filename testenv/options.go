package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"time"
)

const launcherClass = "io.vlproxy.testenv.EmbeddedOpenSearch"

// ClusterName is the cluster name of every node started by this package; tests can tell such a
// node from an external cluster by it (GET / returns it as cluster_name).
const ClusterName = "vlproxy-test"

// withDefaults applies every default of Options in one place.
func (o Options) withDefaults() (Options, error) {
	if o.Dir == "" {
		o.Dir = os.Getenv("VLPROXY_OPENSEARCH_DIR")
	}
	if o.Dir == "" {
		root, err := moduleRoot()
		if err != nil {
			return o, err
		}
		o.Dir = filepath.Join(root, "testenv", "opensearch")
	}
	// Absolute and symlink-free: the AppCDS archive only matches the classpath build.sh used.
	if abs, err := filepath.Abs(o.Dir); err == nil {
		o.Dir = abs
	}
	if real, err := filepath.EvalSymlinks(o.Dir); err == nil {
		o.Dir = real
	}
	if o.Java == "" {
		o.Java = findJava()
	}
	switch o.Profile {
	case "":
		o.Profile = ProfileTest
	case ProfileTest, ProfileBench:
	default:
		return o, fmt.Errorf("unknown profile %q: want %q or %q", o.Profile, ProfileTest, ProfileBench)
	}
	if o.HTTPPort < 0 || o.HTTPPort > 65535 {
		return o, fmt.Errorf("HTTPPort %d is out of range", o.HTTPPort)
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 180 * time.Second
	}
	return o, nil
}

// moduleRoot walks up from the working directory to the go.mod of this module.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("cannot find the module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "testenv", "opensearch", "pom.xml")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find testenv/opensearch/pom.xml above the working directory: set VLPROXY_OPENSEARCH_DIR")
		}
		dir = parent
	}
}

// findJava prefers a Java 17: OpenSearch 2.19 is built and supported for it.
func findJava() string {
	if j := os.Getenv("VLPROXY_JAVA"); j != "" {
		return j
	}
	if m, _ := filepath.Glob("/usr/lib/jvm/java-17-openjdk-*/bin/java"); len(m) > 0 {
		return m[0]
	}
	if h := os.Getenv("JAVA_HOME"); h != "" {
		if _, err := os.Stat(filepath.Join(h, "bin", "java")); err == nil {
			return filepath.Join(h, "bin", "java")
		}
	}
	if p, err := exec.LookPath("java"); err == nil {
		return p
	}
	return "java"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// checkBuilt reports ErrNotBuilt unless the launcher jar and the server jars exist.
func checkBuilt(dir string) error {
	jar := filepath.Join(dir, "target", "launcher.jar")
	if !fileExists(jar) {
		return fmt.Errorf("%w (missing %s)", ErrNotBuilt, jar)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "target", "lib", "opensearch-2.*.jar")); len(m) == 0 {
		return fmt.Errorf("%w (no opensearch server jar in %s)", ErrNotBuilt, filepath.Join(dir, "target", "lib"))
	}
	return nil
}

func javaArgs(o Options, home string) []string {
	// The flags live in java @argfiles so that build.sh dumps its AppCDS archive with the very
	// same flags the nodes run with.
	args := []string{
		"@" + filepath.Join(o.Dir, "jvm", "common.options"),
		"@" + filepath.Join(o.Dir, "jvm", string(o.Profile)+".options"),
	}
	t := filepath.Join(o.Dir, "target")
	if o.Profile == ProfileTest {
		// ~30% less start-up CPU. A stale or foreign archive is ignored by the JVM
		// (-Xshare:auto is the default), so its presence is never an error.
		if jsa := filepath.Join(t, "cds-test.jsa"); fileExists(jsa) {
			args = append(args, "-XX:SharedArchiveFile="+jsa)
		}
	}
	args = append(args, o.JVMArgs...)
	// lib before knn: for a jar in both, the server's copy wins.
	cp := filepath.Join(t, "launcher.jar") + string(filepath.ListSeparator) +
		filepath.Join(t, "lib", "*") + string(filepath.ListSeparator) +
		filepath.Join(t, "knn", "*")
	args = append(args, "-cp", cp, launcherClass,
		"--home", home,
		"--cluster-name", ClusterName,
		"--http-port", strconv.Itoa(o.HTTPPort),
		"--transport-port", "0",
		"--stdin-watchdog")
	if o.NoKNN {
		args = append(args, "--no-knn")
	}
	keys := make([]string, 0, len(o.Settings))
	for k := range o.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "-E", k+"="+o.Settings[k])
	}
	return args
}
