package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"

	sessionv1 "github.com/a2a-grpc/stubs/go/a2a_grpc/session/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	a2a "google.golang.org/lf/a2a/v1"
)

// event is one A2A event, summed up for the JSON lines this program prints.
type event struct {
	// Seq is the event's number in a session call (CallEvent.seq); absent on the plain stream.
	Seq       *uint64 `json:"seq,omitempty"`
	Kind      string  `json:"kind"` // task, status, artifact or message
	TaskID    string  `json:"task_id,omitempty"`
	State     string  `json:"state,omitempty"`
	Artifact  string  `json:"artifact,omitempty"`
	Text      string  `json:"text,omitempty"`
	Append    bool    `json:"append,omitempty"`
	LastChunk bool    `json:"last_chunk,omitempty"`
}

// textRequest is a SendMessageRequest carrying one user message with one text part.
func textRequest(text string) *a2a.SendMessageRequest {
	return &a2a.SendMessageRequest{
		Message: &a2a.Message{
			MessageId: newID(),
			Role:      a2a.Role_ROLE_USER,
			Parts:     []*a2a.Part{{Content: &a2a.Part_Text{Text: text}}},
		},
	}
}

func newID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err) // the system's random source failed: nothing sensible is left to do
	}
	return hex.EncodeToString(b)
}

// texts joins the text parts (a reference agent's artifacts and status messages are text).
func texts(parts []*a2a.Part) string {
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(p.GetText())
	}
	return b.String()
}

// streamEvent sums up one event of SendStreamingMessage (or of a session's streaming call).
func streamEvent(r *a2a.StreamResponse) (event, error) {
	switch {
	case r.GetTask() != nil:
		t := r.GetTask()
		return event{Kind: "task", TaskID: t.GetId(), State: t.GetStatus().GetState().String()}, nil
	case r.GetStatusUpdate() != nil:
		u := r.GetStatusUpdate()
		return event{
			Kind:   "status",
			TaskID: u.GetTaskId(),
			State:  u.GetStatus().GetState().String(),
			Text:   texts(u.GetStatus().GetMessage().GetParts()),
		}, nil
	case r.GetArtifactUpdate() != nil:
		u := r.GetArtifactUpdate()
		return event{
			Kind:      "artifact",
			TaskID:    u.GetTaskId(),
			Artifact:  u.GetArtifact().GetName(),
			Text:      texts(u.GetArtifact().GetParts()),
			Append:    u.GetAppend(),
			LastChunk: u.GetLastChunk(),
		}, nil
	case r.GetMessage() != nil:
		return event{Kind: "message", Text: texts(r.GetMessage().GetParts())}, nil
	}
	return event{}, errors.New("an event with no payload")
}

// describe makes a gRPC error readable: its code, message and the A2A error's reason and facts
// (google.rpc.ErrorInfo), e.g. "FAILED_PRECONDITION: ... (reason CAPABILITY_MISMATCH,
// missing_skills=translate)".
func describe(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	return errors.New(statusText(st))
}

func statusText(st *status.Status) string {
	text := fmt.Sprintf("%s: %s", codeName(st.Code()), st.Message())
	for _, detail := range st.Details() {
		info, ok := detail.(*errdetails.ErrorInfo)
		if !ok {
			continue
		}
		facts := []string{"reason " + info.GetReason()}
		keys := make([]string, 0, len(info.GetMetadata()))
		for k := range info.GetMetadata() {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			facts = append(facts, k+"="+info.GetMetadata()[k])
		}
		text += " (" + strings.Join(facts, ", ") + ")"
	}
	return text
}

// codeNames are the gRPC status codes' canonical names, by number.
var codeNames = []string{
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
	"OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
}

// codeName is a gRPC status code's canonical name, e.g. "FAILED_PRECONDITION".
func codeName(code codes.Code) string {
	if int(code) < len(codeNames) {
		return codeNames[code]
	}
	return fmt.Sprintf("CODE_%d", code)
}

// callStatus describes a CallEnd's status as a gRPC error would read.
func callStatus(end *sessionv1.CallEnd) string {
	return statusText(status.FromProto(end.GetStatus()))
}
