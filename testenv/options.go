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

// checkBuilt reports ErrNotBuilt unless the launcher class and the server jars exist.
func checkBuilt(dir string) error {
	class := filepath.Join(dir, "target", "classes", "io", "vlproxy", "testenv", "EmbeddedOpenSearch.class")
	if _, err := os.Stat(class); err != nil {
		return fmt.Errorf("%w (missing %s)", ErrNotBuilt, class)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "target", "lib", "opensearch-2.*.jar")); len(m) == 0 {
		return fmt.Errorf("%w (no opensearch server jar in %s)", ErrNotBuilt, filepath.Join(dir, "target", "lib"))
	}
	return nil
}

// profileFlags are the JVM flags of each profile.
var profileFlags = map[Profile][]string{
	// Start-up matters more than throughput: C1 only, one GC thread family, fixed small heap.
	ProfileTest: {"-Xms512m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"},
	// Like the distribution's defaults: 1 GiB fixed heap (no resize noise), G1, full JIT.
	ProfileBench: {"-Xms1g", "-Xmx1g", "-XX:+UseG1GC"},
}

// commonFlags follow the distribution's jvm.options and SystemJvmOptions where they matter
// for an embedded node.
var commonFlags = []string{
	"-Xss1m",
	"-Djava.awt.headless=true",
	"-Dfile.encoding=UTF-8",
	"-Djna.nosys=true",
	"-XX:-OmitStackTraceInFastThrow",
	"-Dio.netty.noUnsafe=true",
	"-Dio.netty.noKeySetOptimization=true",
	"-Dio.netty.recycler.maxCapacityPerThread=0",
	"-Dio.netty.allocator.numDirectArenas=0",
	"-Dlog4j.shutdownHookEnabled=false",
	"-Dlog4j2.disable.jmx=true",
	"-Djava.locale.providers=SPI,COMPAT",
}

func javaArgs(o Options, home string) []string {
	args := append([]string{}, profileFlags[o.Profile]...)
	args = append(args, commonFlags...)
	args = append(args, o.JVMArgs...)
	t := filepath.Join(o.Dir, "target")
	// lib before knn: for a jar in both, the server's copy wins.
	cp := filepath.Join(t, "classes") + string(filepath.ListSeparator) +
		filepath.Join(t, "lib", "*") + string(filepath.ListSeparator) +
		filepath.Join(t, "knn", "*")
	args = append(args, "-cp", cp, launcherClass,
		"--home", home,
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
