// Package plugins is gitmon's public plugin SDK on hashicorp/go-plugin:
// the handshake, the versioned gRPC protocol (package proto), the Runner
// interface a plugin implements with its gRPC client and server adapters,
// and a one-line Serve for plugin authors. Package plugintest runs a
// plugin in-process for tests.
//
// A plugin is a program whose main is
//
//	func main() { plugins.Serve(myRunner{}) }
//
// gitmon launches it on the first stage of a pipeline that names it
// (`runner: plugin`), without the daemon's environment, and reuses it for
// later stages, possibly concurrently.
package plugins

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/gitmon-dev/gitmon/plugins/proto"
)

// ProtocolVersion is the plugin protocol this package speaks, negotiated
// through go-plugin's VersionedPlugins.
const ProtocolVersion = 1

// PluginName is the name a Runner is dispensed under.
const PluginName = "runner"

// Handshake is the handshake of gitmon plugins. The cookie only keeps a
// plugin from being run by hand by mistake; it is not a security measure.
var Handshake = plugin.HandshakeConfig{
	// ProtocolVersion is unused when VersionedPlugins is set; it is kept
	// equal to ProtocolVersion for older readers of the handshake.
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "GITMON_PLUGIN",
	MagicCookieValue: "b2d6a6f1-runner-7c4e",
}

// VersionedPlugins returns the plugin sets by protocol version, for
// go-plugin's ClientConfig.VersionedPlugins; impl is nil on the host.
func VersionedPlugins(impl Runner) map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{
		ProtocolVersion: {PluginName: &GRPCPlugin{Impl: impl}},
	}
}

// Info describes a plugin.
type Info struct {
	Name    string
	Version string
	// Capabilities are free-form flags such as "idempotent" (the stage
	// may safely run again after an interruption).
	Capabilities []string
}

// StageRequest is what every stage gets (SPEC §4), plus the pipeline's
// params.
type StageRequest struct {
	Repository      string
	Environment     string
	Service         string
	Version         string
	PreviousVersion string // "" on a first deployment
	Commit          string
	Author          string
	Committer       string
	Tickets         []string
	Stage           string
	Action          string // "deploy" or "remove"
	RunID           string // unique per stage run
	// Descriptor is the whole descriptor as JSON.
	Descriptor json.RawMessage
	// Params are the pipeline's params from gitmon.yaml, as JSON values:
	// numbers arrive as float64, lists as []any, maps as map[string]any.
	Params map[string]any
}

// Result is how a stage ended. A failed stage is OK false with a Message
// saying why; an error from Run is for the plugin itself breaking.
type Result struct {
	OK      bool
	Message string
	URL     string
}

// Runner is what a plugin implements. Run runs one stage and must return
// promptly once ctx is done (the host cancelled or timed out the stage).
// logf writes one line of stage output; it may be called from several
// goroutines, and calls after Run returns are dropped. Run may be called
// concurrently for different stages.
type Runner interface {
	Info(ctx context.Context) (Info, error)
	Run(ctx context.Context, req *StageRequest, logf func(line string)) (Result, error)
}

// Serve serves impl as a gitmon plugin, over gRPC only, and returns when
// the host is done with it. It is the whole main of a plugin.
func Serve(impl Runner) {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: VersionedPlugins(impl),
		// go-plugin registers grpc.health.v1 itself; a second
		// registration would kill the plugin at start.
		GRPCServer: plugin.DefaultGRPCServer,
	})
}

// GRPCPlugin is the go-plugin glue of a Runner: on the plugin side it
// serves Impl, on the host side it dispenses a Runner that calls the
// plugin. It supports gRPC only.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl Runner // plugin side only
}

var _ plugin.GRPCPlugin = (*GRPCPlugin)(nil)

// GRPCServer registers the Runner service.
func (p *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if p.Impl == nil {
		return errors.New("plugins: GRPCPlugin has no Impl")
	}
	pb.RegisterRunnerServer(s, &server{impl: p.Impl})
	return nil
}

// GRPCClient returns a Runner calling the plugin over conn.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return NewClient(conn), nil
}

// NewClient returns a Runner calling a plugin over conn.
func NewClient(conn grpc.ClientConnInterface) Runner {
	return &client{rc: pb.NewRunnerClient(conn)}
}

// client is the host side of the protocol.
type client struct{ rc pb.RunnerClient }

func (c *client) Info(ctx context.Context) (Info, error) {
	r, err := c.rc.Info(ctx, &pb.InfoRequest{})
	if err != nil {
		return Info{}, err
	}
	return Info{Name: r.GetName(), Version: r.GetVersion(), Capabilities: r.GetCapabilities()}, nil
}

// Run returns the gRPC status error as it is, so that the host can tell
// a crashed plugin (codes.Unavailable) from a failing one.
func (c *client) Run(ctx context.Context, req *StageRequest, logf func(string)) (Result, error) {
	preq, err := ToProto(req)
	if err != nil {
		return Result{}, err
	}
	// Cancelling ctx cancels the call, and so the plugin's Run context.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.rc.Run(ctx, preq)
	if err != nil {
		return Result{}, err
	}
	for {
		ev, err := stream.Recv()
		if err != nil {
			return Result{}, err // io.EOF: the plugin sent no result
		}
		switch e := ev.GetEvent().(type) {
		case *pb.RunEvent_Log:
			if logf != nil {
				logf(e.Log)
			}
		case *pb.RunEvent_Result:
			return Result{OK: e.Result.GetOk(), Message: e.Result.GetMessage(), URL: e.Result.GetUrl()}, nil
		}
	}
}

// server is the plugin side of the protocol.
type server struct {
	pb.UnimplementedRunnerServer
	impl Runner
}

func (s *server) Info(ctx context.Context, _ *pb.InfoRequest) (*pb.InfoResponse, error) {
	i, err := s.impl.Info(ctx)
	if err != nil {
		return nil, err
	}
	return &pb.InfoResponse{Name: i.Name, Version: i.Version, Capabilities: i.Capabilities}, nil
}

func (s *server) Run(preq *pb.StageRequest, stream grpc.ServerStreamingServer[pb.RunEvent]) error {
	var (
		mu   sync.Mutex // stream.Send is not safe for concurrent use
		done bool
	)
	logf := func(line string) {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			_ = stream.Send(&pb.RunEvent{Event: &pb.RunEvent_Log{Log: line}})
		}
	}
	res, err := s.impl.Run(stream.Context(), FromProto(preq), logf)
	mu.Lock()
	done = true
	mu.Unlock()
	if err != nil {
		return err
	}
	return stream.Send(&pb.RunEvent{Event: &pb.RunEvent_Result{Result: &pb.Result{Ok: res.OK, Message: res.Message, Url: res.URL}}})
}

// ToProto converts a request to its wire form. It fails on params that
// are not JSON values.
func ToProto(r *StageRequest) (*pb.StageRequest, error) {
	var params *structpb.Struct
	if len(r.Params) > 0 {
		var err error
		if params, err = structpb.NewStruct(r.Params); err != nil {
			return nil, fmt.Errorf("plugins: params: %w", err)
		}
	}
	return &pb.StageRequest{
		Repository:      r.Repository,
		Environment:     r.Environment,
		Service:         r.Service,
		Version:         r.Version,
		PreviousVersion: r.PreviousVersion,
		Commit:          r.Commit,
		Author:          r.Author,
		Committer:       r.Committer,
		Tickets:         r.Tickets,
		Stage:           r.Stage,
		Action:          r.Action,
		RunId:           r.RunID,
		DescriptorJson:  r.Descriptor,
		Params:          params,
	}, nil
}

// FromProto converts a request from its wire form.
func FromProto(p *pb.StageRequest) *StageRequest {
	r := &StageRequest{
		Repository:      p.GetRepository(),
		Environment:     p.GetEnvironment(),
		Service:         p.GetService(),
		Version:         p.GetVersion(),
		PreviousVersion: p.GetPreviousVersion(),
		Commit:          p.GetCommit(),
		Author:          p.GetAuthor(),
		Committer:       p.GetCommitter(),
		Tickets:         p.GetTickets(),
		Stage:           p.GetStage(),
		Action:          p.GetAction(),
		RunID:           p.GetRunId(),
		Descriptor:      p.GetDescriptorJson(),
	}
	if p.GetParams() != nil {
		r.Params = p.GetParams().AsMap()
	}
	return r
}
