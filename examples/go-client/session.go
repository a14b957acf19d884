package main

// A small client of the session binding (protos/a2a_grpc/session/v1/session.proto): one
// bidirectional stream, a Hello answered by a Welcome, then many calls at once, each under a call
// id of ours; the server's frames are sorted out by call id. It does what a well-behaved peer
// must: it unpacks batches, joins chunked frames, gives credit back as it takes events, beats,
// and ends with a Goodbye and a half-close. It does not resume a dropped session (the Python
// client does): here a broken stream fails the calls.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	sessionv1 "github.com/a2a-grpc/stubs/go/a2a_grpc/session/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// maxJoined bounds what one call's chunks may add up to (the server's default frame limit is 4
// MiB; a larger event comes in chunks).
const maxJoined = 64 << 20

// item is one frame of a call, with the credit the application owes for it once it takes it.
type item struct {
	frame  *sessionv1.ServerFrame
	frames uint64 // 0 for a frame joined from chunks: their credit went back as they came
	size   uint64
}

type session struct {
	stream  sessionv1.SessionService_ConnectClient
	cancel  context.CancelFunc // ends the stream, whatever state it is in
	welcome *sessionv1.Welcome

	sendMu sync.Mutex // a gRPC stream takes one Send at a time

	mu       sync.Mutex
	calls    map[uint64]chan item
	joining  map[uint64][]byte
	received uint64        // the server's counted frames (CallEvent, CallEnd, Chunk) received
	session  ledger        // credit owed for the whole session
	arrival  []uint64      // the call id of each event and end, in the order they came
	goodbye  string        // the server's Goodbye, once it said it
	failure  error         // why the session ended, if it did not end cleanly
	closing  atomic.Bool   // we said Goodbye: the end of the stream is expected
	lastSeen atomic.Int64  // UnixNano of the last frame received
	done     chan struct{} // closed when the reader has stopped
}

// openSession opens a stream, says Hello and waits for the Welcome. The stream lives until
// close (or ctx ends). A refusal (missing skills, bad credentials, no common version) is the
// stream's error status, returned here.
func openSession(ctx context.Context, conn grpc.ClientConnInterface, hello *sessionv1.Hello) (*session, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := sessionv1.NewSessionServiceClient(conn).Connect(ctx)
	if err != nil {
		cancel()
		return nil, describe(err)
	}
	s := &session{
		stream:  stream,
		cancel:  cancel,
		calls:   map[uint64]chan item{},
		joining: map[uint64][]byte{},
		done:    make(chan struct{}),
	}
	// A Send that fails says only io.EOF: the server's reason is the status Recv returns.
	if err := stream.Send(&sessionv1.ClientFrame{Frame: &sessionv1.ClientFrame_Hello{Hello: hello}}); err != nil && err != io.EOF {
		cancel()
		return nil, describe(err)
	}
	first, err := stream.Recv()
	if err != nil {
		cancel()
		if err == io.EOF {
			return nil, errors.New("the server ended the stream without answering the Hello")
		}
		if code := status.Code(err); code == codes.Unavailable || code == codes.DeadlineExceeded {
			return nil, fmt.Errorf("the session could not be opened: %w", describe(err))
		}
		return nil, fmt.Errorf("the server refused the session: %w", describe(err))
	}
	if s.welcome = first.GetWelcome(); s.welcome == nil {
		cancel()
		return nil, errors.New("the server did not answer the Hello with a Welcome")
	}
	w := s.welcome.GetWindow()
	s.session = ledger{frames: uint64(w.GetSessionFrames()), bytes: w.GetSessionBytes()}
	s.lastSeen.Store(time.Now().UnixNano())
	go s.read()
	go s.beat(s.welcome.GetHeartbeatInterval().AsDuration(), s.welcome.GetMissedHeartbeats())
	return s, nil
}

func (s *session) send(frame *sessionv1.ClientFrame) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	return s.stream.Send(frame)
}

// fail ends the session with err (the first reason given wins) and its stream with it.
func (s *session) fail(err error) {
	s.mu.Lock()
	if s.failure == nil {
		s.failure = err
	}
	s.mu.Unlock()
	s.cancel()
}

// read takes the server's frames until the stream ends, and hands each call its own.
func (s *session) read() {
	defer close(s.done)
	for {
		frame, err := s.stream.Recv()
		if err == io.EOF {
			if !s.closing.Load() {
				s.mu.Lock()
				reason := s.goodbye
				s.mu.Unlock()
				if reason != "" {
					s.fail(fmt.Errorf("the server ended the session: %s", reason))
				} else {
					s.fail(errors.New("the server ended the stream without a Goodbye"))
				}
			}
			return
		}
		if err != nil {
			s.fail(fmt.Errorf("the session's stream broke: %w", describe(err)))
			return
		}
		s.lastSeen.Store(time.Now().UnixNano())
		frames := []*sessionv1.ServerFrame{frame}
		if batch := frame.GetBatch(); batch != nil { // frames sent together: each as if alone
			frames = batch.GetFrames()
		}
		var due []*sessionv1.Credit
		s.mu.Lock()
		for _, f := range frames {
			if err = s.take(f, true, &due); err != nil {
				break
			}
		}
		s.mu.Unlock()
		s.sendCredit(due)
		if err != nil {
			s.fail(err)
			return
		}
	}
}

// take acts on one server frame, under s.mu; counted is false for a frame joined from chunks
// (the chunks were counted). Credit that falls due goes into due.
func (s *session) take(frame *sessionv1.ServerFrame, counted bool, due *[]*sessionv1.Credit) error {
	var callID uint64
	switch f := frame.GetFrame().(type) {
	case *sessionv1.ServerFrame_Event:
		callID = f.Event.GetCallId()
	case *sessionv1.ServerFrame_End:
		callID = f.End.GetCallId()
	case *sessionv1.ServerFrame_Chunk:
		s.received++
		// Each chunk's credit goes back at once: a frame larger than the window must not wait.
		*due = append(*due, s.owed(0, nil, 1, uint64(proto.Size(frame)))...)
		joined, err := s.join(f.Chunk)
		if err != nil || joined == nil {
			return err
		}
		return s.take(joined, false, due)
	case *sessionv1.ServerFrame_Goodbye:
		if !f.Goodbye.GetGoingAway() { // a draining server's notice is no end yet
			s.goodbye = f.Goodbye.GetReason()
		}
		return nil
	default: // heartbeats (a sign of life, already noted), and credit for frames we never chunk
		return nil
	}
	it := item{frame: frame, size: uint64(proto.Size(frame))}
	if counted {
		s.received++
		if frame.GetEvent() != nil {
			it.frames = 1
		}
	}
	s.arrival = append(s.arrival, callID)
	ch, ok := s.calls[callID]
	if !ok { // a call we left: its events still count against the session's window
		*due = append(*due, s.owed(0, nil, it.frames, it.size)...)
		return nil
	}
	if frame.GetEnd() != nil || frame.GetEvent().GetLast() {
		delete(s.calls, callID)
	}
	select {
	case ch <- it:
		return nil
	default: // the channel holds a whole window: the server sent beyond its credit
		return fmt.Errorf("the server sent more events for call %d than the credit it was given", callID)
	}
}

// join adds a chunk to its call's frame; with the last one, the frame they make.
func (s *session) join(chunk *sessionv1.Chunk) (*sessionv1.ServerFrame, error) {
	id := chunk.GetCallId()
	data := append(s.joining[id], chunk.GetData()...)
	if len(data) > maxJoined {
		return nil, fmt.Errorf("call %d: a chunked frame larger than %d bytes", id, maxJoined)
	}
	if !chunk.GetLast() {
		s.joining[id] = data
		return nil, nil
	}
	delete(s.joining, id)
	frame := &sessionv1.ServerFrame{}
	if err := proto.Unmarshal(data, frame); err != nil {
		return nil, fmt.Errorf("call %d: its chunks do not make a frame: %v", id, err)
	}
	return frame, nil
}

// ledger counts what the application took and has not given back as credit yet; it gives it
// back once half the window is taken (fewer, larger Credit frames).
type ledger struct {
	frames, bytes           uint64 // the window
	takenFrames, takenBytes uint64
}

func (l *ledger) take(frames, size uint64) (uint64, uint64, bool) {
	l.takenFrames += frames
	l.takenBytes += size
	if l.takenFrames*2 < l.frames && l.takenBytes*2 < l.bytes {
		return 0, 0, false
	}
	f, b := l.takenFrames, l.takenBytes
	l.takenFrames, l.takenBytes = 0, 0
	return f, b, true
}

// owed records, under s.mu, that the application took frames of size bytes of call callID
// (call: its ledger, nil when the call's credit is not ours to give), and returns the Credit
// frames that fall due.
func (s *session) owed(callID uint64, call *ledger, frames, size uint64) []*sessionv1.Credit {
	var due []*sessionv1.Credit
	if call != nil {
		if f, b, ok := call.take(frames, size); ok {
			due = append(due, &sessionv1.Credit{CallId: callID, Frames: uint32(f), Bytes: b, Received: s.received})
		}
	}
	if f, b, ok := s.session.take(frames, size); ok {
		due = append(due, &sessionv1.Credit{CallId: 0, Frames: uint32(f), Bytes: b, Received: s.received})
	}
	return due
}

func (s *session) sendCredit(due []*sessionv1.Credit) {
	for _, c := range due {
		// A Send that fails means a broken stream, which the reader reports.
		_ = s.send(&sessionv1.ClientFrame{Frame: &sessionv1.ClientFrame_Credit{Credit: c}})
	}
}

// beat sends a Heartbeat every interval, and declares the server dead when it has sent nothing
// for missed intervals.
func (s *session) beat(interval time.Duration, missed uint32) {
	if interval <= 0 {
		return
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for count := uint64(1); ; count++ {
		select {
		case <-s.done:
			return
		case <-ticker.C:
		}
		silent := time.Since(time.Unix(0, s.lastSeen.Load()))
		if silent > interval*time.Duration(missed) {
			s.fail(fmt.Errorf("the server sent nothing for %s: declared dead", silent.Round(time.Millisecond)))
			return
		}
		s.mu.Lock()
		received := s.received
		s.mu.Unlock()
		_ = s.send(&sessionv1.ClientFrame{Frame: &sessionv1.ClientFrame_Heartbeat{
			Heartbeat: &sessionv1.Heartbeat{Count: count, Received: received},
		}})
	}
}

// callResult is one call's events and how it ended.
type callResult struct {
	Text    string  `json:"text"`
	Events  []event `json:"events"`
	Code    string  `json:"code"`
	Message string  `json:"message,omitempty"`
}

// streamCall runs SendStreamingMessage with text as call callID, and reads its events until its
// CallEnd. A call that ends with an error status gives its result and that error.
func (s *session) streamCall(ctx context.Context, callID uint64, text string) (callResult, error) {
	result := callResult{Text: text, Events: []event{}}
	w := s.welcome.GetWindow()
	ch := make(chan item, w.GetCallFrames()+1) // a whole window of events, and the CallEnd
	call := &ledger{frames: uint64(w.GetCallFrames()), bytes: w.GetCallBytes()}
	s.mu.Lock()
	s.calls[callID] = ch
	s.mu.Unlock()
	frame := &sessionv1.Call{
		CallId:  callID,
		Request: &sessionv1.Call_SendStreamingMessage{SendStreamingMessage: textRequest(text)},
	}
	if deadline, ok := ctx.Deadline(); ok { // the server gives up when we do
		frame.Timeout = durationpb.New(time.Until(deadline))
	}
	if err := s.send(&sessionv1.ClientFrame{Frame: &sessionv1.ClientFrame_Call{Call: frame}}); err != nil {
		return result, fmt.Errorf("call %d: sending it: %w", callID, err)
	}
	for {
		var it item
		select {
		case it = <-ch:
		case <-ctx.Done():
			// Leave the call: the server ends it (its task goes on).
			s.mu.Lock()
			delete(s.calls, callID)
			s.mu.Unlock()
			_ = s.send(&sessionv1.ClientFrame{Frame: &sessionv1.ClientFrame_Cancel{Cancel: &sessionv1.CancelCall{CallId: callID}}})
			return result, fmt.Errorf("call %d: %w", callID, ctx.Err())
		case <-s.done:
			select {
			case it = <-ch: // what came before the end is still ours
			default:
				return result, fmt.Errorf("call %d: %w", callID, s.err())
			}
		}
		if end := it.frame.GetEnd(); end != nil {
			result.Code = codeName(codes.Code(end.GetStatus().GetCode()))
			result.Message = end.GetStatus().GetMessage()
			if end.GetStatus().GetCode() != 0 {
				return result, fmt.Errorf("call %d ended %s", callID, callStatus(end))
			}
			return result, nil
		}
		ev := it.frame.GetEvent()
		e, err := streamEvent(ev.GetStreamResponse())
		if err != nil {
			return result, fmt.Errorf("call %d, event %d: %w", callID, ev.GetSeq(), err)
		}
		seq := ev.GetSeq()
		e.Seq = &seq
		result.Events = append(result.Events, e)
		if it.frames > 0 {
			s.mu.Lock()
			due := s.owed(callID, call, it.frames, it.size)
			s.mu.Unlock()
			s.sendCredit(due)
		}
		if ev.GetLast() { // never on a stream's events; a unary answer would end here, OK
			result.Code = "OK"
			return result, nil
		}
	}
}

func (s *session) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failure != nil {
		return s.failure
	}
	return errors.New("the session ended")
}

// close says Goodbye, half-closes, and waits for the server to end the stream (OK). It always
// releases the stream, and says whether the session had failed before or fails now.
func (s *session) close(ctx context.Context) error {
	defer s.cancel()
	s.closing.Store(true)
	goodbye := &sessionv1.Goodbye{Reason: "go-client is done"}
	if err := s.send(&sessionv1.ClientFrame{Frame: &sessionv1.ClientFrame_Goodbye{Goodbye: goodbye}}); err != nil && err != io.EOF {
		return describe(err)
	}
	s.sendMu.Lock()
	err := s.stream.CloseSend()
	s.sendMu.Unlock()
	if err != nil {
		return describe(err)
	}
	select {
	case <-s.done:
	case <-ctx.Done():
		return fmt.Errorf("closing the session: the server did not end the stream: %w", ctx.Err())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failure
}
