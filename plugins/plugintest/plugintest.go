// Package plugintest runs a gitmon plugin in-process, over the same gRPC
// adapters a real plugin uses, so that plugin authors test without a
// daemon:
//
//	res, logs := plugintest.Run(t, myRunner{}, &plugins.StageRequest{Service: "payments"})
package plugintest

import (
	"context"
	"sync"
	"testing"

	"github.com/hashicorp/go-plugin"

	"github.com/gitmon-dev/gitmon/plugins"
)

// Client serves impl in-process through go-plugin's gRPC server and
// returns a Runner calling it over gRPC; both are stopped when the test
// ends.
func Client(t testing.TB, impl plugins.Runner) plugins.Runner {
	t.Helper()
	c, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{
		plugins.PluginName: &plugins.GRPCPlugin{Impl: impl},
	})
	// Close stops the server too, through go-plugin's controller; a
	// second Stop would race with it.
	t.Cleanup(func() { c.Close() })
	raw, err := c.Dispense(plugins.PluginName)
	if err != nil {
		t.Fatalf("plugintest: dispensing the runner: %v", err)
	}
	return raw.(plugins.Runner)
}

// Run runs one stage of impl over gRPC and returns its result and the log
// lines it streamed. An error from the plugin (or the transport) fails
// the test; use RunContext to test for errors or cancellation.
func Run(t testing.TB, impl plugins.Runner, req *plugins.StageRequest) (plugins.Result, []string) {
	t.Helper()
	res, logs, err := RunContext(context.Background(), t, impl, req)
	if err != nil {
		t.Fatalf("plugintest: Run: %v", err)
	}
	return res, logs
}

// RunContext is Run with a context and the error returned.
func RunContext(ctx context.Context, t testing.TB, impl plugins.Runner, req *plugins.StageRequest) (plugins.Result, []string, error) {
	t.Helper()
	if req == nil {
		req = &plugins.StageRequest{}
	}
	var (
		mu   sync.Mutex
		logs []string
	)
	res, err := Client(t, impl).Run(ctx, req, func(line string) {
		mu.Lock()
		logs = append(logs, line)
		mu.Unlock()
	})
	mu.Lock()
	defer mu.Unlock()
	return res, logs, err
}
