package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gitmon-dev/gitmon/plugins"
	"github.com/gitmon-dev/gitmon/plugins/plugintest"
)

func TestPluginSmoke(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	host, port, _ := strings.Cut(strings.TrimPrefix(srv.URL, "http://"), ":")

	desc := `{"domain":"` + host + `","port":` + port + `,"healthcheck":{"scheme":"http","endpoints":["/healthz"]}}`
	res, logs := plugintest.Run(t, smoke{}, &plugins.StageRequest{Descriptor: []byte(desc)})
	if !res.OK || len(logs) != 1 || logs[0] != "GET "+srv.URL+"/healthz: ok" {
		t.Errorf("healthy: %+v %q", res, logs)
	}

	desc = `{"domain":"` + host + `","port":` + port + `,"healthcheck":{"scheme":"http","endpoints":["/healthz","/ready"]}}`
	res, _ = plugintest.Run(t, smoke{}, &plugins.StageRequest{Descriptor: []byte(desc)})
	if res.OK || !strings.Contains(res.Message, "503") {
		t.Errorf("503: %+v", res)
	}

	res, _ = plugintest.Run(t, smoke{}, &plugins.StageRequest{Params: map[string]any{"url": []any{srv.URL + "/healthz"}}})
	if !res.OK {
		t.Errorf("params.url: %+v", res)
	}
	res, _ = plugintest.Run(t, smoke{}, &plugins.StageRequest{Descriptor: []byte(`{}`)})
	if res.OK || !strings.Contains(res.Message, "nothing to check") {
		t.Errorf("no domain: %+v", res)
	}
}
