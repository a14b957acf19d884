// Command go-client calls an a2a-grpc server from Go, on stubs generated from the project's
// protos: SendMessage, SendStreamingMessage, then one session (the session binding) running two
// calls at once. Each step prints one JSON line; any failure is printed on stderr and the exit
// status is 1. README.md says how to generate the stubs, build it and run it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	sessionv1 "github.com/a2a-grpc/stubs/go/a2a_grpc/session/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	a2a "google.golang.org/lf/a2a/v1"
)

// What each step sends to the reference agent (`a2a-grpc serve`), which picks a behaviour by the
// message's first word: "echo" completes a task with the text as its artifact, "stream N" sends
// N artifact chunks, "slow S" reports progress for S seconds. The two session calls differ so
// that their events cannot be mistaken for each other, and the slow one overlaps the other.
const (
	unaryText  = "echo hello from Go"
	streamText = "stream 3"
)

var sessionCalls = []string{"stream 4", "slow 0.5"} // call ids 1 and 2

// a2aVersion is the A2A version this client speaks: sent with every call (the a2a-version
// header; a server reads a call without it as 0.3) and named in the session's Hello.
const a2aVersion = "1.0"

type headers []string

func (h *headers) String() string { return strings.Join(*h, ",") }
func (h *headers) Set(v string) error {
	if name, _, ok := strings.Cut(v, "="); !ok || name == "" {
		return fmt.Errorf("want NAME=VALUE, not %q", v)
	}
	*h = append(*h, v)
	return nil
}

// pairs gives the headers as metadata pairs, names in lower case (gRPC's rule).
func (h headers) pairs() map[string]string {
	m := map[string]string{}
	for _, v := range h {
		name, value, _ := strings.Cut(v, "=")
		m[strings.ToLower(name)] = value
	}
	return m
}

type options struct {
	addr    string
	timeout time.Duration
	steps   []string
	skills  []string
	headers map[string]string
}

func main() {
	var o options
	var hs headers
	flag.StringVar(&o.addr, "addr", "127.0.0.1:50051", "the server's gRPC address, HOST:PORT")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Second, "deadline of each step")
	steps := flag.String("steps", "unary,stream,session", "the steps to run, in this order")
	skills := flag.String("require-skills", "stream,slow", "skills the session's Hello requires (comma-separated; empty: none)")
	flag.Var(&hs, "header", "NAME=VALUE sent with every call and in the Hello, e.g. X-API-Key=...; repeatable")
	flag.Parse()
	o.steps = split(*steps)
	o.skills = split(*skills)
	o.headers = hs.pairs()
	if err := run(o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "go-client:", err)
		os.Exit(1)
	}
}

func split(list string) []string {
	var out []string
	for _, item := range strings.Split(list, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func run(o options, out io.Writer) error {
	// Plaintext, as `a2a-grpc serve` listens by default; see docs/tls.md for TLS. Dial does not
	// wait for the connection: the first call fails fast if nothing listens.
	conn, err := grpc.Dial(o.addr, grpc.WithInsecure())
	if err != nil {
		return err
	}
	defer conn.Close()
	client := a2a.NewA2AServiceClient(conn)
	steps := map[string]func(context.Context) (any, error){
		"unary":   func(ctx context.Context) (any, error) { return unary(ctx, client, unaryText) },
		"stream":  func(ctx context.Context) (any, error) { return stream(ctx, client, streamText) },
		"session": func(ctx context.Context) (any, error) { return runSession(ctx, conn, o) },
	}
	encoder := json.NewEncoder(out)
	for _, name := range o.steps {
		step, ok := steps[name]
		if !ok {
			return fmt.Errorf("no step %q (the steps: unary, stream, session)", name)
		}
		ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
		pairs := []string{"a2a-version", a2aVersion}
		for k, v := range o.headers {
			pairs = append(pairs, k, v)
		}
		result, err := step(metadata.AppendToOutgoingContext(ctx, pairs...))
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := encoder.Encode(result); err != nil {
			return err
		}
	}
	return nil
}

type unaryResult struct {
	Step      string  `json:"step"`
	TaskID    string  `json:"task_id,omitempty"`
	State     string  `json:"state,omitempty"`
	Artifacts []event `json:"artifacts,omitempty"`
	Reply     string  `json:"reply,omitempty"` // a direct Message instead of a task
}

// unary sends one message and prints the task it produced (or the agent's direct reply).
func unary(ctx context.Context, client a2a.A2AServiceClient, text string) (any, error) {
	resp, err := client.SendMessage(ctx, textRequest(text))
	if err != nil {
		return nil, describe(err)
	}
	result := unaryResult{Step: "unary"}
	if msg := resp.GetMessage(); msg != nil {
		result.Reply = texts(msg.GetParts())
		return result, nil
	}
	task := resp.GetTask()
	if task == nil {
		return nil, errors.New("the response holds neither a task nor a message")
	}
	result.TaskID, result.State = task.GetId(), task.GetStatus().GetState().String()
	for _, a := range task.GetArtifacts() {
		result.Artifacts = append(result.Artifacts, event{Kind: "artifact", Artifact: a.GetName(), Text: texts(a.GetParts())})
	}
	return result, nil
}

type streamResult struct {
	Step   string  `json:"step"`
	Events []event `json:"events"`
}

// stream sends one message and reads the task's events as they happen, until the server ends
// the stream (after the task's final state).
func stream(ctx context.Context, client a2a.A2AServiceClient, text string) (any, error) {
	events, err := client.SendStreamingMessage(ctx, textRequest(text))
	if err != nil {
		return nil, describe(err)
	}
	result := streamResult{Step: "stream", Events: []event{}}
	for {
		r, err := events.Recv()
		if err == io.EOF {
			return result, nil
		}
		if err != nil { // the step's context ends the stream on return, whatever happened
			return nil, describe(err)
		}
		e, err := streamEvent(r)
		if err != nil {
			return nil, err
		}
		result.Events = append(result.Events, e)
	}
}

type sessionResult struct {
	Step            string                `json:"step"`
	SessionID       string                `json:"session_id"`
	Agent           string                `json:"agent"`
	ProtocolVersion string                `json:"protocol_version"`
	HeartbeatMillis int64                 `json:"heartbeat_ms"`
	Calls           map[uint64]callResult `json:"calls"`
	Arrival         []uint64              `json:"arrival"` // whose frame came, in order: how they interleaved
	Closed          bool                  `json:"closed"`
}

// runSession opens a session, runs the two calls at once over it, waits for both CallEnds and
// closes the session cleanly.
func runSession(ctx context.Context, conn grpc.ClientConnInterface, o options) (any, error) {
	hello := &sessionv1.Hello{
		ProtocolVersions: []string{a2aVersion},
		AgentName:        "go-client",
		Metadata:         o.headers, // the session's credentials: checked once, for every call
		// No heartbeat interval, frame limit or window: the server's are taken.
	}
	for _, id := range o.skills {
		hello.RequiredSkills = append(hello.RequiredSkills, &sessionv1.Skill{Id: id})
	}
	s, err := openSession(ctx, conn, hello)
	if err != nil {
		return nil, err
	}
	defer s.cancel() // whatever happens below, the stream ends
	results := make([]callResult, len(sessionCalls))
	failures := make([]error, len(sessionCalls))
	var wg sync.WaitGroup
	for i, text := range sessionCalls {
		wg.Add(1)
		go func(i int, text string) {
			defer wg.Done()
			results[i], failures[i] = s.streamCall(ctx, uint64(i+1), text)
		}(i, text)
	}
	wg.Wait()
	closed := s.close(ctx)
	for _, err := range append(failures, closed) {
		if err != nil { // the first is the cause; a failed call makes the others fail too
			return nil, err
		}
	}
	result := sessionResult{
		Step:            "session",
		SessionID:       s.welcome.GetSessionId(),
		Agent:           s.welcome.GetAgentName(),
		ProtocolVersion: s.welcome.GetProtocolVersion(),
		HeartbeatMillis: s.welcome.GetHeartbeatInterval().AsDuration().Milliseconds(),
		Calls:           map[uint64]callResult{},
		Arrival:         s.arrival,
		Closed:          true,
	}
	for i, r := range results {
		result.Calls[uint64(i+1)] = r
	}
	return result, nil
}
