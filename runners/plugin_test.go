package runners

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/plugins"
	"github.com/gitmon-dev/gitmon/plugins/testplugin"
)

// pluginBinDir holds gitmon-testplugin and gitmon-smoke, built once per
// test binary (without -race: they are the plugins, not the code under
// test).
var pluginBinDir string

var buildPlugins = sync.OnceValue(func() error {
	dir, err := os.MkdirTemp("", "gitmon-plugin-test-")
	if err != nil {
		return err
	}
	pluginBinDir = dir
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", dir+"/", "./plugins/testplugin/cmd/gitmon-testplugin", "./plugins/examples/smoke")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the plugins: %v\n%s", err, out)
	}
	return os.Rename(filepath.Join(dir, "smoke"), filepath.Join(dir, "gitmon-smoke"))
})

func TestMain(m *testing.M) {
	code := m.Run()
	if pluginBinDir != "" {
		os.RemoveAll(pluginBinDir)
	}
	os.Exit(code)
}

func testPluginPath(tb testing.TB) string {
	tb.Helper()
	if err := buildPlugins(); err != nil {
		tb.Fatal(err)
	}
	return filepath.Join(pluginBinDir, "gitmon-testplugin")
}

func newTestPlugin(t testing.TB, p Pipeline) *Plugin {
	t.Helper()
	if p.Path == "" {
		p.Path = testPluginPath(t)
	}
	if p.Name == "" {
		p.Name = "test"
	}
	r, err := NewPlugin(p, Env{RunDir: testRunDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	r.Backoff = 10 * time.Millisecond
	t.Cleanup(func() { r.Close() })
	return r
}

// pid is the process id of the running plugin, 0 when none.
func (p *Plugin) pid() int {
	p.mu.Lock()
	l := p.cur
	p.mu.Unlock()
	if l == nil {
		return 0
	}
	<-l.done
	if l.client == nil || l.err != nil {
		return 0
	}
	if rc := l.client.ReattachConfig(); rc != nil {
		return rc.Pid
	}
	return 0
}

func processAlive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	// A zombie is gone for our purposes.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	st, err := parseStat(b)
	return err == nil && st.state != 'Z'
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("plugin process %d still alive", pid)
		}
		time.Sleep(time.Millisecond) // the polling interval of a deadline loop
	}
}

// newOKServer serves 200 on /healthz and 404 elsewhere.
func newOKServer(t *testing.T) string {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(http.ResponseWriter, *http.Request) {})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

var testReq = &Request{Repository: "deployments", Environment: "qa", Service: "payments", Version: "1.2.3", Stage: "smoke", Action: "deploy", RunID: "run-1", Descriptor: []byte(`{"service":"payments"}`)}

func TestPluginRunStreamsLogsAndResult(t *testing.T) {
	r := newTestPlugin(t, Pipeline{Params: map[string]any{"logs": 3}})
	if pid := r.pid(); pid != 0 {
		t.Fatalf("constructing the runner started plugin %d", pid)
	}
	var out bytes.Buffer
	res, err := r.Run(context.Background(), testReq, &out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK || res.Message != "smoke done" || res.URL != "https://example.com/runs/run-1" {
		t.Errorf("result %+v", res)
	}
	if got, want := out.String(), "line 1\nline 2\nline 3\nhello payments\n"; got != want {
		t.Errorf("output %q, want %q", got, want)
	}
	pid := r.pid()
	// Reused across stages, concurrently.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			res, err := r.Run(context.Background(), testReq, nil, nil)
			if err != nil || !res.OK {
				t.Errorf("concurrent run: %+v %v", res, err)
			}
		})
	}
	wg.Wait()
	if r.pid() != pid {
		t.Errorf("plugin relaunched: %d then %d", pid, r.pid())
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid)
	if _, err := r.Run(context.Background(), testReq, nil, nil); err == nil {
		t.Error("Run after Close succeeded")
	}
}

func TestPluginFactoryStartsNothing(t *testing.T) {
	f, ok := Lookup(KindPlugin)
	if !ok {
		t.Fatal("plugin runner not registered")
	}
	// A plugin_dir with a binary that records being run.
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	script := "#!/bin/sh\ntouch " + marker + "\n"
	if err := os.WriteFile(filepath.Join(dir, "smoke"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	rn, err := f(Pipeline{Name: "smoke", Kind: KindPlugin}, Env{PluginDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	p := rn.(*Plugin)
	if p.Path != filepath.Join(dir, "smoke") {
		t.Errorf("path %s", p.Path)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Error("the plugin was run without a stage")
	}
	if _, err := f(Pipeline{Name: "smoke", Kind: KindPlugin}, Env{}); err == nil {
		t.Error("no path and no plugin_dir: want an error")
	}
	if _, err := f(Pipeline{Name: "smoke", Path: "/x", SHA256: "abc"}, Env{}); err == nil {
		t.Error("bad sha256: want an error")
	}
}

func fileSHA256(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func TestPluginChecksum(t *testing.T) {
	path := testPluginPath(t)
	good := newTestPlugin(t, Pipeline{SHA256: fileSHA256(t, path)})
	if res, err := good.Run(context.Background(), testReq, nil, nil); err != nil || !res.OK {
		t.Fatalf("matching checksum: %+v %v", res, err)
	}
	bad := newTestPlugin(t, Pipeline{SHA256: strings.Repeat("00", 32)})
	_, err := bad.Run(context.Background(), testReq, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("mismatched checksum: want a checksum error, got %v", err)
	}
	if pid := bad.pid(); pid != 0 {
		t.Errorf("a plugin with a bad checksum runs as %d", pid)
	}
}

func TestPluginKilledMidStage(t *testing.T) {
	r := newTestPlugin(t, Pipeline{Name: "smoke"})
	if res, err := r.Run(context.Background(), testReq, nil, nil); err != nil || !res.OK {
		t.Fatalf("first run: %+v %v", res, err)
	}
	pid := r.pid()
	r.Params = map[string]any{"block": true}
	blocking := make(chan struct{})
	out := writerFunc(func(b []byte) (int, error) {
		if strings.Contains(string(b), "blocking") {
			close(blocking)
		}
		return len(b), nil
	})
	done := make(chan Result, 1)
	go func() {
		res, err := r.Run(context.Background(), testReq, out, nil)
		if err != nil {
			t.Errorf("killed stage: error %v, want a failed result", err)
		}
		done <- res
	}()
	<-blocking
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.OK || !strings.Contains(res.Message, "plugin gitmon-testplugin crashed") {
		t.Fatalf("killed stage: %+v", res)
	}
	r.Params = nil
	res, err := r.Run(context.Background(), testReq, nil, nil)
	if err != nil || !res.OK {
		t.Fatalf("run after the crash: %+v %v", res, err)
	}
	if r.pid() == pid {
		t.Error("not relaunched")
	}
	newPID := r.pid()
	sockets := r.sockets
	r.Close()
	waitGone(t, newPID)
	// The killed plugin's Unix socket (which go-plugin leaves behind) goes
	// with the runner's socket folder.
	if sockets == "" || filepath.Dir(sockets) != r.RunDir.Path() {
		t.Fatalf("the plugin's socket folder is %q, want one in the run folder %s", sockets, r.RunDir.Path())
	}
	if _, err := os.Stat(sockets); !os.IsNotExist(err) {
		t.Errorf("socket folder %s left behind after Close: %v", sockets, err)
	}
}

func TestPluginCrashCircuitBreaker(t *testing.T) {
	r := newTestPlugin(t, Pipeline{Params: map[string]any{"crash": true}})
	r.MaxCrashes = 2
	r.Backoff = time.Millisecond
	for i := range 2 {
		res, err := r.Run(context.Background(), testReq, nil, nil)
		if err != nil || res.OK || !strings.Contains(res.Message, "crashed") {
			t.Fatalf("crash %d: %+v %v", i, res, err)
		}
	}
	start := time.Now()
	res, err := r.Run(context.Background(), testReq, nil, nil)
	if err != nil || res.OK || !strings.Contains(res.Message, "circuit open until") {
		t.Fatalf("after 2 crashes: %+v %v", res, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("circuit open did not fail fast: %v", d)
	}
	// Once the circuit closes, a good stage resets it.
	r.mu.Lock()
	r.openUntil, r.notBefore = time.Time{}, time.Time{}
	r.mu.Unlock()
	r.Params = nil
	if res, err := r.Run(context.Background(), testReq, nil, nil); err != nil || !res.OK {
		t.Fatalf("half-open run: %+v %v", res, err)
	}
	if r.crashes != 0 {
		t.Errorf("crashes %d after a good stage", r.crashes)
	}
}

func TestPluginCancel(t *testing.T) {
	r := newTestPlugin(t, Pipeline{Params: map[string]any{"block": true}})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := r.Run(ctx, testReq, nil, nil)
	if err != nil || res.OK || !strings.HasPrefix(res.Message, "cancelled: ") {
		t.Fatalf("%+v %v", res, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
	// Cancelling is not a crash: the plugin serves the next stage.
	pid := r.pid()
	r.Params = nil
	if res, err := r.Run(context.Background(), testReq, nil, nil); err != nil || !res.OK || r.pid() != pid {
		t.Fatalf("after cancel: %+v %v", res, err)
	}
}

func TestPluginErrorAndFail(t *testing.T) {
	r := newTestPlugin(t, Pipeline{Params: map[string]any{"fail": "endpoint down"}})
	if res, err := r.Run(context.Background(), testReq, nil, nil); err != nil || res.OK || res.Message != "endpoint down" {
		t.Fatalf("fail: %+v %v", res, err)
	}
	r.Params = map[string]any{"error": "broken"}
	if _, err := r.Run(context.Background(), testReq, nil, nil); err == nil || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("error: %v", err)
	}
	if r.crashes != 0 {
		t.Errorf("an error counted as a crash")
	}
}

func TestPluginSmokeExample(t *testing.T) {
	testPluginPath(t)
	srv := newOKServer(t)
	r := newTestPlugin(t, Pipeline{Path: filepath.Join(pluginBinDir, "gitmon-smoke"), Params: map[string]any{"url": srv + "/healthz"}})
	var out bytes.Buffer
	res, err := r.Run(context.Background(), testReq, &out, nil)
	if err != nil || !res.OK {
		t.Fatalf("%+v %v\n%s", res, err, out.String())
	}
	if !strings.Contains(out.String(), "GET "+srv+"/healthz: ok") {
		t.Errorf("output %q", out.String())
	}
	r.Params = map[string]any{"url": srv + "/missing"}
	if res, _ := r.Run(context.Background(), testReq, nil, nil); res.OK || !strings.Contains(res.Message, "404") {
		t.Errorf("404: %+v", res)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// --- benchmarks ---

func reportPercentiles(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	p := func(q float64) float64 { return float64(d[min(len(d)-1, int(q*float64(len(d))))].Nanoseconds()) }
	b.ReportMetric(p(0.50), "p50-ns")
	b.ReportMetric(p(0.99), "p99-ns")
}

func BenchmarkPluginRoundTrip(b *testing.B) {
	r := newTestPlugin(b, Pipeline{})
	ctx := context.Background()
	if _, err := r.Run(ctx, testReq, nil, nil); err != nil { // launch
		b.Fatal(err)
	}
	var d []time.Duration
	for b.Loop() {
		t0 := time.Now()
		if res, err := r.Run(ctx, testReq, nil, nil); err != nil || !res.OK {
			b.Fatal(res, err)
		}
		d = append(d, time.Since(t0))
	}
	reportPercentiles(b, d)
}

func BenchmarkInProcessRoundTrip(b *testing.B) {
	impl := testplugin.Runner{}
	ctx := context.Background()
	req := &plugins.StageRequest{Service: testReq.Service, Stage: testReq.Stage, RunID: testReq.RunID, Descriptor: testReq.Descriptor}
	var d []time.Duration
	for b.Loop() {
		t0 := time.Now()
		if res, err := impl.Run(ctx, req, func(string) {}); err != nil || !res.OK {
			b.Fatal(res, err)
		}
		d = append(d, time.Since(t0))
	}
	reportPercentiles(b, d)
}

func BenchmarkPluginColdStart(b *testing.B) {
	path := testPluginPath(b)
	for _, bc := range []struct {
		name string
		sum  string
	}{{"checksum=off", ""}, {"checksum=on", fileSHA256(b, path)}} {
		b.Run(bc.name, func(b *testing.B) {
			var d []time.Duration
			for b.Loop() {
				r, err := NewPlugin(Pipeline{Name: "bench", Path: path, SHA256: bc.sum}, Env{})
				if err != nil {
					b.Fatal(err)
				}
				t0 := time.Now()
				l, _, err := r.acquire(context.Background())
				if err != nil || l == nil {
					b.Fatal(err)
				}
				d = append(d, time.Since(t0))
				b.StopTimer()
				r.Close()
				b.StartTimer()
			}
			reportPercentiles(b, d)
		})
	}
	// The baseline: the same binary exec'd and run to its exit without
	// the handshake cookie (it refuses at once), i.e. process start alone.
	b.Run("baseline=exec-only", func(b *testing.B) {
		var d []time.Duration
		for b.Loop() {
			t0 := time.Now()
			_ = exec.Command(path).Run()
			d = append(d, time.Since(t0))
		}
		reportPercentiles(b, d)
	})
}
