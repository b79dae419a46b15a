package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/pipe-dsl/pipe/dsl"
	"github.com/pipe-dsl/pipe/metrics"
	"github.com/pipe-dsl/pipe/pipeline"
)

// The Kubernetes manifests in deploy/ must match this binary: every flag
// they pass exists in `pipe run`, the probes and the scrape path are
// endpoints the --http server really serves, on the port --http binds, the
// grace period outlasts the drain, and the pipeline they mount compiles.

type manifest struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Template struct {
			Metadata struct {
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec struct {
				Grace      int         `yaml:"terminationGracePeriodSeconds"`
				Containers []container `yaml:"containers"`
				Volumes    []struct {
					ConfigMap struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type container struct {
	Args  []string `yaml:"args"`
	Ports []struct {
		Name string `yaml:"name"`
		Port int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name string `yaml:"name"`
	} `yaml:"env"`
	Liveness  probe `yaml:"livenessProbe"`
	Readiness probe `yaml:"readinessProbe"`
}

type probe struct {
	HTTPGet struct {
		Path string    `yaml:"path"`
		Port yaml.Node `yaml:"port"`
	} `yaml:"httpGet"`
}

func readManifests(t *testing.T, file string) []manifest {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []manifest
	dec := yaml.NewDecoder(bytes.NewReader(src))
	for {
		var m manifest
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		out = append(out, m)
	}
}

// runFlags returns the flags `pipe run` really has, from its usage text.
func runFlags(t *testing.T) []string {
	t.Helper()
	var usage bytes.Buffer
	cmdRun([]string{"-h"}, io.Discard, &usage)
	var flags []string
	for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z][a-z-]*)`).FindAllStringSubmatch(usage.String(), -1) {
		flags = append(flags, m[1])
	}
	if !slices.Contains(flags, "http") {
		t.Fatalf("usage lists no --http flag:\n%s", usage.String())
	}
	return flags
}

// served returns the status the --http server answers for path.
func served(t *testing.T, path string) int {
	t.Helper()
	exp, err := metrics.New(func() (string, []pipeline.NodeStats) { return "p", nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Shutdown(context.Background())
	exp.SetReady(true)
	rec := httptest.NewRecorder()
	exp.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code
}

func TestDeployManifestsMatchTheBinary(t *testing.T) {
	files, _ := filepath.Glob("../../deploy/kubernetes/*.yaml")
	if len(files) == 0 {
		t.Fatal("no manifests in deploy/kubernetes")
	}
	flags := runFlags(t)
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			ms := readManifests(t, file)
			configs := map[string]map[string]string{}
			for _, m := range ms {
				if m.Kind == "ConfigMap" {
					configs[m.Metadata.Name] = m.Data
				}
			}
			deployments := 0
			for _, m := range ms {
				if m.Kind != "Deployment" {
					continue
				}
				deployments++
				checkDeployment(t, m, flags, configs)
			}
			if deployments == 0 {
				t.Fatal("no Deployment")
			}
		})
	}
}

func checkDeployment(t *testing.T, m manifest, flags []string, configs map[string]map[string]string) {
	t.Helper()
	spec := m.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(spec.Containers))
	}
	c := spec.Containers[0]
	if len(c.Args) < 2 || c.Args[0] != "run" {
		t.Fatalf("args %q: want run [flags] FILE", c.Args)
	}
	opts := map[string]string{}
	for _, a := range c.Args[1 : len(c.Args)-1] {
		name, value, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || !slices.Contains(flags, name) {
			t.Errorf("arg %q is not a flag of pipe run (it has %v)", a, flags)
		}
		opts[name] = value
	}
	_, port, ok := strings.Cut(opts["http"], ":")
	if !ok {
		t.Fatalf("--http=%q: want host:port, so probes can reach it", opts["http"])
	}
	portName := ""
	for _, p := range c.Ports {
		if strconv.Itoa(p.Port) == port {
			portName = p.Name
		}
	}
	if portName == "" {
		t.Errorf("no containerPort %s (the --http port)", port)
	}
	for what, pr := range map[string]probe{"liveness": c.Liveness, "readiness": c.Readiness} {
		want := map[string]string{"liveness": "/healthz", "readiness": "/readyz"}[what]
		if pr.HTTPGet.Path != want {
			t.Errorf("%s probe path %q, want %s", what, pr.HTTPGet.Path, want)
		}
		if p := pr.HTTPGet.Port.Value; p != port && p != portName {
			t.Errorf("%s probe port %q, want %s or %q", what, p, port, portName)
		}
		if code := served(t, pr.HTTPGet.Path); code != http.StatusOK {
			t.Errorf("%s probe path %s answers %d, want 200", what, pr.HTTPGet.Path, code)
		}
	}
	ann := m.Spec.Template.Metadata.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != port {
		t.Errorf("prometheus annotations %v: want scrape true on port %s", ann, port)
	}
	if code := served(t, ann["prometheus.io/path"]); code != http.StatusOK {
		t.Errorf("scrape path %q answers %d", ann["prometheus.io/path"], code)
	}
	drain, err := time.ParseDuration(opts["drain-timeout"])
	if err != nil {
		t.Fatalf("--drain-timeout=%q: %v (set it: the grace period must outlast it)", opts["drain-timeout"], err)
	}
	if grace := time.Duration(spec.Grace) * time.Second; grace <= drain+stopGrace {
		t.Errorf("terminationGracePeriodSeconds %v <= drain %v + stop grace %v: SIGKILL would cut the drain", grace, drain, stopGrace)
	}
	file := c.Args[len(c.Args)-1]
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = "redis://127.0.0.1:6379/0" // any valid value: compile does no I/O
		if strings.Contains(e.Name, "DSN") {
			env[e.Name] = "postgres://u@127.0.0.1/db"
		}
	}
	for _, v := range spec.Volumes {
		for key, src := range configs[v.ConfigMap.Name] {
			if !strings.HasSuffix(file, "/"+key) {
				continue
			}
			lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
			cfg, err := dsl.Parse(key, []byte(src), &dsl.Options{Lookup: lookup})
			if err == nil {
				_, err = dsl.Compile(cfg, &dsl.CompileOptions{Options: dsl.Options{Lookup: lookup}})
			}
			if err != nil {
				t.Errorf("mounted pipeline %s does not compile: %v", key, err)
			}
			return
		}
	}
	t.Errorf("pipeline file %s is not mounted from a ConfigMap in the manifest", file)
}
