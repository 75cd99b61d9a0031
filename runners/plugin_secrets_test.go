package runners

import (
	"context"
	"strings"
	"testing"
)

// pluginCanary is a secret the test plugin is made to leak: distinctive
// enough that no fragment of it occurs by chance.
const pluginCanary = "Zq9canary7f3e1d2cXyW"

// leaks returns the first fragment of 6 bytes or more of secret found in
// s, or "".
func leaks(s, secret string) string {
	const frag = 6
	for i := 0; i+frag <= len(secret); i++ {
		if strings.Contains(s, secret[i:i+frag]) {
			return secret[i : i+frag]
		}
	}
	return ""
}

// Issue 7 point 8: a plugin's results, errors and crash output reach the
// stored record and the log; no secret may.
func TestPluginRedactsSecrets(t *testing.T) {
	var logs logBuffer
	newRunner := func(t *testing.T, params map[string]any) *Plugin {
		t.Helper()
		r, err := NewPlugin(Pipeline{Name: "test", Path: testPluginPath(t), Params: params},
			Env{Secrets: []string{pluginCanary}, Logger: logs.logger()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r
	}
	check := func(t *testing.T, what, s string) {
		t.Helper()
		if f := leaks(s, pluginCanary); f != "" {
			t.Errorf("%s shows %q of the secret: %s", what, f, s)
		}
	}

	t.Run("result message and url", func(t *testing.T) {
		r := newRunner(t, map[string]any{"fail": "login as " + pluginCanary + " refused", "url": "https://ci.example.com/?token=" + pluginCanary})
		res, err := r.Run(context.Background(), testReq, nil, nil)
		if err != nil || res.OK {
			t.Fatalf("Run = %+v, %v", res, err)
		}
		check(t, "Message", res.Message)
		check(t, "URL", res.URL)
		if res.Message != "login as "+Redacted+" refused" {
			t.Errorf("Message = %q", res.Message)
		}
	})

	t.Run("error", func(t *testing.T) {
		r := newRunner(t, map[string]any{"error": "token " + pluginCanary + " expired"})
		_, err := r.Run(context.Background(), testReq, nil, nil)
		if err == nil || !strings.Contains(err.Error(), "expired") {
			t.Fatalf("Run error = %v", err)
		}
		check(t, "the error", err.Error())
	})

	t.Run("crash with the secret cut by the stderr tail", func(t *testing.T) {
		// The tail keeps the last pluginStderrTail bytes: pad so that its
		// cut falls in the middle of the secret.
		pad := strings.Repeat("x", pluginStderrTail-1-len(pluginCanary)/2)
		r := newRunner(t, map[string]any{"stderr": "[ERROR] auth " + pluginCanary + pad, "crash": true})
		out := NewOutput(1<<16, []string{pluginCanary})
		res, err := r.Run(context.Background(), testReq, out, nil)
		if err != nil || res.OK || !strings.Contains(res.Message, "crashed") || !strings.Contains(res.Message, "xxxx") {
			t.Fatalf("Run = %+v, %v; want a crash message with the stderr tail", res, err)
		}
		check(t, "the crash message", res.Message)
		// A second crash message, for the circuit breaker's "last:".
		r.mu.Lock()
		last := r.lastErr
		r.mu.Unlock()
		check(t, "the circuit breaker's last error", last)
	})

	t.Run("go-plugin's log lines", func(t *testing.T) {
		r := newRunner(t, map[string]any{"stderr": "[ERROR] auth with " + pluginCanary + " failed", "fail": "no"})
		if _, err := r.Run(context.Background(), testReq, nil, nil); err != nil {
			t.Fatal(err)
		}
		r.Close() // the stderr reader is done once the process is gone
	})
	l := logs.String()
	check(t, "the log", l)
	if !strings.Contains(l, "failed") || !strings.Contains(l, Redacted) {
		t.Errorf("the plugin's stderr line is not in the log, redacted:\n%s", l)
	}
}
