package plugins_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/plugins"
	"github.com/gitmon-dev/gitmon/plugins/plugintest"
	"github.com/gitmon-dev/gitmon/plugins/testplugin"
)

func TestPluginInProcess(t *testing.T) {
	req := &plugins.StageRequest{
		Repository: "deployments", Environment: "qa", Service: "payments", Version: "1.2.3",
		Tickets: []string{"OPS-1"}, Stage: "smoke", Action: "deploy", RunID: "r1",
		Descriptor: []byte(`{"service":"payments"}`),
		Params:     map[string]any{"logs": 2},
	}
	res, logs := plugintest.Run(t, testplugin.Runner{}, req)
	if !res.OK || res.Message != "smoke done" || res.URL != "https://example.com/runs/r1" {
		t.Errorf("result %+v", res)
	}
	if want := []string{"line 1", "line 2", "hello payments"}; !slices.Equal(logs, want) {
		t.Errorf("logs %q, want %q", logs, want)
	}
	info, err := plugintest.Client(t, testplugin.Runner{}).Info(context.Background())
	if err != nil || info.Name != "gitmon-testplugin" || !slices.Contains(info.Capabilities, "idempotent") {
		t.Errorf("info %+v %v", info, err)
	}
}

func TestPluginRequestRoundTrip(t *testing.T) {
	in := &plugins.StageRequest{
		Repository: "a", Environment: "b", Service: "c", Version: "d", PreviousVersion: "e",
		Commit: "f", Author: "g", Committer: "h", Tickets: []string{"i", "j"}, Stage: "k",
		Action: "remove", RunID: "l", Descriptor: []byte(`{"x":1}`),
		Params: map[string]any{"s": "v", "n": 2.0, "b": true, "l": []any{"x"}, "m": map[string]any{"k": "v"}},
	}
	p, err := plugins.ToProto(in)
	if err != nil {
		t.Fatal(err)
	}
	out := plugins.FromProto(p)
	if out.PreviousVersion != "e" || out.Committer != "h" || !slices.Equal(out.Tickets, in.Tickets) ||
		string(out.Descriptor) != `{"x":1}` || out.Params["b"] != true || out.Params["n"] != 2.0 || out.RunID != "l" {
		t.Errorf("round trip: %+v", out)
	}
	if _, err := plugins.ToProto(&plugins.StageRequest{Params: map[string]any{"bad": make(chan int)}}); err == nil {
		t.Error("a non-JSON param: want an error")
	}
}

func TestPluginCancelReachesPlugin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, logs, err := plugintest.RunContext(ctx, t, testplugin.Runner{}, &plugins.StageRequest{Params: map[string]any{"block": true}})
	// Either the call's own cancellation or the plugin's answer to it.
	if err == nil && !strings.HasPrefix(res.Message, "cancelled: ") {
		t.Fatalf("want a cancelled stage, got %+v", res)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("returned after %v", d)
	}
	if !slices.Equal(logs, []string{"blocking"}) {
		t.Errorf("logs %q", logs)
	}
}

func TestPluginErrorIsReturned(t *testing.T) {
	_, _, err := plugintest.RunContext(context.Background(), t, testplugin.Runner{}, &plugins.StageRequest{Params: map[string]any{"error": "boom"}})
	if err == nil {
		t.Fatal("want an error")
	}
}
