// Package testplugin is the plugin gitmon's own tests and benchmarks run.
// Its behaviour is chosen by the stage's params:
//
//	crash: true      exit with status 2 mid-stage
//	block: true      log "blocking" and wait until the stage is cancelled
//	fail: "why"      fail the stage with that message
//	error: "why"     return an error (the plugin breaking)
//	logs: N          log N lines before the result
//	stderr: "text"   write text to file descriptor 2 first, where a panic
//	                 goes (go-plugin logs it; os.Stderr is redirected)
//	url: "u"         the result's URL
//
// With none of them it logs one line and succeeds: the no-op plugin.
package testplugin

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/gitmon-dev/gitmon/plugins"
)

// Runner is the test plugin.
type Runner struct{}

var _ plugins.Runner = Runner{}

// Info names the plugin.
func (Runner) Info(context.Context) (plugins.Info, error) {
	return plugins.Info{Name: "gitmon-testplugin", Version: "1.0.0", Capabilities: []string{"idempotent"}}, nil
}

// Run runs a stage as its params say.
func (Runner) Run(ctx context.Context, req *plugins.StageRequest, logf func(string)) (plugins.Result, error) {
	p := req.Params
	if text, ok := p["stderr"].(string); ok {
		fmt.Fprintln(os.NewFile(2, "stderr"), text)
	}
	if n, ok := p["logs"].(float64); ok {
		for i := range int(n) {
			logf(fmt.Sprintf("line %d", i+1))
		}
	}
	if p["crash"] == true {
		logf("crashing")
		os.Exit(2)
	}
	if p["block"] == true {
		logf("blocking")
		<-ctx.Done()
		return plugins.Result{Message: "cancelled: " + ctx.Err().Error()}, nil
	}
	if msg, ok := p["error"].(string); ok {
		return plugins.Result{}, errors.New(msg)
	}
	if msg, ok := p["fail"].(string); ok {
		url, _ := p["url"].(string)
		return plugins.Result{Message: msg, URL: url}, nil
	}
	logf("hello " + req.Service)
	return plugins.Result{OK: true, Message: req.Stage + " done", URL: "https://example.com/runs/" + req.RunID}, nil
}
