package watch

import (
	"context"
	"errors"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/qcerr"
)

// noticeKey is the mailbox key of PollNotices ("" is never a valid id).
const noticeKey = ""

// indexAbove is the mailbox length above which the id index is a map rather than a linear scan.
const indexAbove = 16

// item is one pending message of a mailbox: the latest *iaasv1.JobEvent or *iaasv1.ResourceEvent of
// an id, or the latest *iaasv1.PollNotice under noticeKey.
type item struct {
	id  string
	msg proto.Message
}

// watcher is one subscriber: a set of ids of one kind (nil kind = jobs), and a mailbox the poller
// writes without ever blocking. The mailbox holds at most one message per id (plus one notice): a
// newer state of an id replaces the unread older one in place, so a slow consumer costs bounded
// memory and still gets every id's latest state, terminal ones included.
type watcher struct {
	p      *poller
	kind   *Kind  // nil for jobs
	target string // awaited status of resources ("" = any idle status)
	ids    []string

	// remaining counts ids whose final event has not been queued yet; guarded by p.mu.
	remaining int

	mu     sync.Mutex
	queue  []item
	index  map[string]int // id -> position in queue, once queue is long
	end    error          // io.EOF when every id is final, else the error that ends the watch
	signal chan struct{}  // capacity 1: "the mailbox changed"
}

func newWatcher(kind *Kind, target string, ids []string) *watcher {
	return &watcher{kind: kind, target: target, ids: ids, remaining: len(ids), signal: make(chan struct{}, 1)}
}

// notify wakes the consumer, if it waits.
func (w *watcher) notify() {
	select {
	case w.signal <- struct{}{}:
	default:
	}
}

// deliver queues msg for id, replacing an unread message of the same id. It never blocks.
func (w *watcher) deliver(id string, msg proto.Message) {
	w.mu.Lock()
	if w.end == nil {
		if i, ok := w.find(id); ok {
			w.queue[i].msg = msg
		} else {
			w.queue = append(w.queue, item{id, msg})
			if w.index != nil {
				w.index[id] = len(w.queue) - 1
			} else if len(w.queue) > indexAbove {
				w.index = make(map[string]int, len(w.queue)*2)
				for i, it := range w.queue {
					w.index[it.id] = i
				}
			}
		}
	}
	w.mu.Unlock()
	w.notify()
}

// find returns the queue position of id's unread message; w.mu is held.
func (w *watcher) find(id string) (int, bool) {
	if w.index != nil {
		i, ok := w.index[id]
		return i, ok
	}
	for i := range w.queue {
		if w.queue[i].id == id {
			return i, true
		}
	}
	return 0, false
}

// finish ends the watch with err (io.EOF for a normal end) once the queued messages are read. The
// first call wins.
func (w *watcher) finish(err error) {
	w.mu.Lock()
	if w.end == nil {
		w.end = err
	}
	w.mu.Unlock()
	w.notify()
}

// take moves every queued message to buf (which it returns, reused) and reports how the watch ends
// once they are read (nil while it goes on).
func (w *watcher) take(buf []item) ([]item, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	buf = append(buf[:0], w.queue...)
	clear(w.queue)
	w.queue = w.queue[:0]
	w.index = nil
	return buf, w.end
}

// Watch is one subscription to a Hub: [Hub.Jobs] or [Hub.Resources]. Its messages are read with
// Recv from one goroutine; Close ends it. R is *iaasv1.WatchJobsResponse or
// *iaasv1.WatchResourcesResponse.
type Watch[R proto.Message] struct {
	w      *watcher
	wrap   func(proto.Message) R
	buf    []item
	next   int
	end    error
	closed sync.Once
}

// Recv returns the next message: each id's state at once, then every change, and PollNotices
// while polling is slowed down. It returns io.EOF after the final message (every job terminal,
// every resource settled or gone), or the error that ended the watch: NOT_FOUND for an unknown job,
// UNAVAILABLE when the Hub closes, CANCELED or DEADLINE_EXCEEDED when ctx ends first.
func (x *Watch[R]) Recv(ctx context.Context) (R, error) {
	var zero R
	for {
		if x.next < len(x.buf) {
			it := x.buf[x.next]
			x.buf[x.next] = item{}
			x.next++
			return x.wrap(it.msg), nil
		}
		if x.end != nil {
			return zero, x.end
		}
		x.buf, x.end = x.w.take(x.buf)
		x.next = 0
		if len(x.buf) > 0 || x.end != nil {
			continue
		}
		select {
		case <-x.w.signal:
		case <-ctx.Done():
			return zero, ctxError(ctx)
		}
	}
}

// Close ends the watch and releases its ids: an id nobody watches any more leaves the poll batches at
// once. It is safe to call more than once and concurrently with the poller.
func (x *Watch[R]) Close() {
	x.closed.Do(func() { x.w.p.unsubscribe(x.w) })
}

// IDs returns the watched ids, deduplicated, in request order.
func (x *Watch[R]) IDs() []string { return x.w.ids }

// ctxError is the gRPC status of a done context: CANCELED or DEADLINE_EXCEEDED, with an ErrorInfo.
func ctxError(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return qcerr.New(codes.Canceled, qcerr.ReasonCanceled, "the watch was canceled", nil)
	}
	return qcerr.New(codes.DeadlineExceeded, qcerr.ReasonDeadlineExceeded, "the deadline passed before the watch ended", nil)
}

func wrapJob(m proto.Message) *iaasv1.WatchJobsResponse {
	switch v := m.(type) {
	case *iaasv1.JobEvent:
		return &iaasv1.WatchJobsResponse{Event: &iaasv1.WatchJobsResponse_Job{Job: v}}
	case *iaasv1.PollNotice:
		return &iaasv1.WatchJobsResponse{Event: &iaasv1.WatchJobsResponse_Notice{Notice: v}}
	}
	return &iaasv1.WatchJobsResponse{}
}

func wrapResource(m proto.Message) *iaasv1.WatchResourcesResponse {
	switch v := m.(type) {
	case *iaasv1.ResourceEvent:
		return &iaasv1.WatchResourcesResponse{Event: &iaasv1.WatchResourcesResponse_Resource{Resource: v}}
	case *iaasv1.PollNotice:
		return &iaasv1.WatchResourcesResponse{Event: &iaasv1.WatchResourcesResponse_Notice{Notice: v}}
	}
	return &iaasv1.WatchResourcesResponse{}
}
