package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Run starts every node and blocks until the pipeline has drained: finite
// sources exhausted and every message resolved, or ctx cancelled and the
// soft stop finished.
//
// Cancelling ctx is a soft stop: sources stop reading, messages already read
// flow on, batches flush, sinks finish. If that takes longer than
// DrainTimeout (or Kill is called), the hard stop cancels every stage and
// sink, nacks what is still in flight and Run returns an *AbandonedError.
// Otherwise Run returns the errors of nodes that failed, or nil.
// Run may be called once.
func (p *Pipeline) Run(ctx context.Context) error {
	if !p.started.CompareAndSwap(false, true) {
		return errors.New("pipeline: Run called twice")
	}
	if err := p.Validate(); err != nil {
		return err
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	if p.Clock == nil {
		p.Clock = SystemClock
	}
	if err := p.check(ctx); err != nil {
		return err
	}
	hard, cancelHard := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHard()
	// soft is ctx, also cancelled when a stage fails (stageFailed).
	soft, stopSoft := context.WithCancel(ctx)
	defer stopSoft()
	kill := func() {
		if hard.Err() == nil {
			p.killed.Store(true)
		}
		cancelHard()
	}
	p.kill.Store(&kill)

	done := make(chan struct{})
	var watch sync.WaitGroup
	watch.Go(func() { p.watchDrain(soft, done, cancelHard) })

	for _, n := range p.nodes {
		n.producers.Store(int32(n.ins))
	}
	for _, n := range p.all() {
		n.info = NodeInfo{Pipeline: p.Name, Name: n.name, Kind: n.kind, Role: n.role}
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	fail := func(n *node, err error) {
		if err == nil || errors.Is(err, context.Canceled) && hard.Err() != nil {
			return
		}
		mu.Lock()
		errs = append(errs, fmt.Errorf("%s %q: %w", n.role, n.name, err))
		mu.Unlock()
	}
	for _, n := range p.nodes {
		wg.Go(func() {
			err := p.runNode(soft, hard, n)
			if err != nil && n.stage != nil && hard.Err() == nil {
				p.stageFailed(n, err, stopSoft)
			}
			fail(n, err)
			p.finished(n)
		})
	}
	var dlqDone sync.WaitGroup
	if p.dlq != nil {
		dlqDone.Go(func() { fail(p.dlq, p.runNode(soft, hard, p.dlq)) })
	}
	wg.Wait()
	if p.dlq != nil {
		close(p.dlq.in)
		dlqDone.Wait()
	}
	close(done)
	watch.Wait()

	if hard.Err() != nil {
		ab := &AbandonedError{InFlight: map[string]int{}}
		for _, n := range p.all() {
			if n.in == nil { // sources have no input
				continue
			}
			for head := range n.in {
				n.received(head)
				for m := head; m != nil; {
					next := unlink(m)
					n.abandoned.Add(1)
					m.Nack(ErrAbandoned)
					m = next
				}
			}
			if c := n.abandoned.Load(); c > 0 {
				ab.InFlight[n.name] = int(c)
			}
		}
		if len(ab.InFlight) > 0 {
			ab.Killed = p.killed.Load()
			for _, n := range p.nodes {
				if n.role == RoleSource {
					ab.Sources += int(n.stats.nackReasons.get(nackReason(ErrAbandoned)))
				}
			}
			errs = append(errs, ab)
		}
	}
	return errors.Join(errs...)
}

// check calls Check on every stage and sink that is a [Checker], before
// any source starts. When one fails it closes the nodes it checked (a
// check may open connections) and returns every failure, each naming its
// node.
func (p *Pipeline) check(ctx context.Context) error {
	var checked []*node
	var errs []error
	for _, n := range p.all() {
		c, ok := n.value().(Checker)
		if !ok || n.role == RoleSource {
			continue
		}
		checked = append(checked, n)
		if err := c.Check(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s %q (%s): check before start: %w", n.role, n.name, n.kind, err))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	for _, n := range checked {
		if c, ok := n.value().(Closer); ok {
			_ = c.Close(ctx)
		}
	}
	return errors.Join(errs...)
}

// Kill starts the hard stop at once: what is in flight is nacked.
func (p *Pipeline) Kill() {
	if k := p.kill.Load(); k != nil {
		(*k)()
	}
}

func (p *Pipeline) all() []*node {
	if p.dlq == nil {
		return p.nodes
	}
	return append(p.nodes[:len(p.nodes):len(p.nodes)], p.dlq)
}

// watchDrain turns a soft stop that outlasts DrainTimeout into a hard stop.
func (p *Pipeline) watchDrain(ctx context.Context, done <-chan struct{}, hardStop func()) {
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	d := p.DrainTimeout
	if d <= 0 {
		d = DefaultDrainTimeout
	}
	t := p.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C():
		p.Logger.Warn("drain timeout: abandoning in-flight messages", "pipeline", p.Name, "timeout", d)
		hardStop()
	}
}

// stageFailed handles a stage whose Run returned an error before the hard
// stop (such as a window fenced by a newer owner of its state): it reads
// no more input, so its upstream would block on it forever. The run stops
// softly (sources stop reading, the rest drains, the drain timeout still
// bounds it), and what still reaches the stage is nacked for redelivery.
func (p *Pipeline) stageFailed(n *node, err error, stopSoft context.CancelFunc) {
	p.Logger.Error("stage failed: stopping the pipeline", "pipeline", p.Name, "node", n.name, "err", err)
	stopSoft()
	out := &outlet{p: p, n: n}
	for m := range n.in {
		out.abandon(m)
	}
}

// finished closes the inputs whose last producer was n.
func (p *Pipeline) finished(n *node) {
	for _, ts := range n.outs {
		for _, t := range ts {
			if t.producers.Add(-1) == 0 {
				close(t.in)
			}
		}
	}
}

func (p *Pipeline) runNode(soft, hard context.Context, n *node) error {
	out := &outlet{p: p, n: n, hard: hard}
	var err error
	switch {
	case n.src != nil:
		// Kill stops sources too, even those blocked on their context.
		ctx, cancel := context.WithCancel(soft)
		stop := context.AfterFunc(hard, cancel)
		err = n.src.Read(ctx, out)
		stop()
		cancel()
	case n.stage != nil:
		err = n.stage.Run(context.WithValue(hard, softKey{}, soft), n.in, out)
		if hard.Err() != nil {
			for m := range drainNow(n.in) {
				out.abandon(m)
			}
		}
	case n.proc != nil && n.opts.Ordered && n.opts.Workers > 1:
		p.runOrdered(hard, n, out)
	case n.proc != nil:
		p.runWorkers(hard, n, eachMessage(hard, func(out *outlet, m *Message) {
			r, perr := p.process(hard, n, m)
			out.route(hard, m, r, perr)
		}))
	default:
		write := eachMessage(hard, func(out *outlet, m *Message) { p.write(hard, n, out, m) })
		if sw, ok := n.sink.(SliceWriter); ok && n.role == RoleSink {
			write = p.writeSlices(hard, n, sw)
		}
		p.runWorkers(hard, n, write)
	}
	if c, ok := n.value().(Closer); ok {
		if cerr := c.Close(hard); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close: %w", cerr))
		}
	}
	return err
}

func (n *node) value() any {
	switch {
	case n.src != nil:
		return n.src
	case n.sink != nil:
		return n.sink
	}
	return n.stageValue()
}

// drainNow yields what is buffered in c without waiting for more.
func drainNow(c <-chan *Message) func(func(*Message) bool) {
	return func(yield func(*Message) bool) {
		for {
			select {
			case m, ok := <-c:
				if !ok || !yield(m) {
					return
				}
			default:
				return
			}
		}
	}
}

// runWorkers calls handle for every input chain on n's workers until the
// input closes or the hard stop. Each worker has its own outlet, which
// gathers what the worker makes of one input chain into one chain for the
// next node (see chain.go).
func (p *Pipeline) runWorkers(hard context.Context, n *node, handle func(*outlet, *Message)) {
	var wg sync.WaitGroup
	for range n.opts.Workers {
		wg.Go(func() {
			out := &outlet{p: p, n: n, hard: hard, batching: true}
			for {
				select {
				case <-hard.Done():
					return
				case head, ok := <-n.in:
					if !ok {
						return
					}
					n.received(head)
					out.holdFor(n)
					handle(out, head)
					_ = out.flush(hard)
				}
			}
		})
	}
	wg.Wait()
}

// eachMessage turns a per-message handler into a chain handler; a message
// still unhandled at the hard stop is abandoned.
func eachMessage(hard context.Context, handle func(*outlet, *Message)) func(*outlet, *Message) {
	return func(out *outlet, head *Message) {
		for m := head; m != nil; {
			next := unlink(m)
			if stopped(hard) {
				out.abandon(m)
			} else {
				handle(out, m)
			}
			m = next
		}
	}
}

// stopped reports whether the hard stop has begun.
func stopped(hard context.Context) bool {
	select {
	case <-hard.Done():
		return true
	default:
		return false
	}
}

func (p *Pipeline) process(ctx context.Context, n *node, m *Message) (*Message, error) {
	w := n.stats.latency.sample()
	if w == 0 {
		return n.proc.Process(ctx, m)
	}
	start := time.Now()
	r, err := n.proc.Process(ctx, m)
	n.stats.latency.record(time.Since(start), w)
	return r, err
}

func (p *Pipeline) write(ctx context.Context, n *node, out *outlet, m *Message) {
	var err error
	if w := n.stats.latency.sample(); w == 0 {
		err = n.sink.Write(ctx, m)
	} else {
		start := time.Now()
		err = n.sink.Write(ctx, m)
		n.stats.latency.record(time.Since(start), w)
	}
	p.written(ctx, n, out, m, err)
}

// written resolves m after its write returned err: acked and counted, or
// failed on to the dead-letter path, or abandoned at the hard stop.
func (p *Pipeline) written(ctx context.Context, n *node, out *outlet, m *Message, err error) {
	// A batch the sink accepted in part counts as its members: the
	// accepted ones out, the refused ones failed.
	var accepted, refused int64 = 0, 1
	if err != nil && n.role != RoleDeadLetter {
		total := len(m.batch)
		err = m.keepRefused(err)
		if m.refused != nil {
			refused = int64(len(m.refused))
			accepted = int64(total) - refused
		}
	}
	switch {
	case err == nil:
		n.stats.out.Add(1)
		p.leave(n, m, nil)
		tapOut(n, "", m)
		m.Ack()
	case ctx.Err() != nil:
		out.abandon(m)
	case n.role == RoleDeadLetter:
		n.stats.failed.Add(1)
		n.recent.add(p.Clock.Now(), err)
		n.stats.nacked.Add(1)
		p.leave(n, m, err)
		p.Logger.Error("dead-letter sink failed; message nacked", "pipeline", p.Name, "sink", n.kind, "err", err)
		m.Nack(err)
	default:
		if Reason(err) == ReasonError {
			err = WithReason(ReasonSinkError, err)
		}
		n.stats.out.Add(accepted)
		out.fail(ctx, m, err, refused)
	}
}

// slot carries one message through an ordered worker pool.
type slot struct {
	m, r *Message
	err  error
	done chan struct{}
}

// runOrdered runs n's workers but emits results in input order. pending is
// the reorder buffer: it holds at most Buffer dispatched messages.
func (p *Pipeline) runOrdered(hard context.Context, n *node, out *outlet) {
	jobs := make(chan *slot)
	pending := make(chan *slot, n.opts.Buffer)
	var wg sync.WaitGroup
	for range n.opts.Workers {
		wg.Go(func() {
			for s := range jobs {
				s.r, s.err = p.process(hard, n, s.m)
				close(s.done)
			}
		})
	}
	wg.Go(func() { // dispatcher: the one closer of jobs and pending
		defer close(pending)
		defer close(jobs)
		for {
			var head *Message
			select {
			case <-hard.Done():
				return
			case mm, ok := <-n.in:
				if !ok {
					return
				}
				head = mm
			}
			n.received(head)
			for m := head; m != nil; {
				next := unlink(m)
				if !p.dispatch(hard, out, m, jobs, pending) {
					for m = next; m != nil; m = next {
						next = unlink(m)
						out.abandon(m)
					}
					return
				}
				m = next
			}
		}
	})
	for s := range pending {
		<-s.done
		if hard.Err() != nil {
			out.abandonResult(s.m, s.r)
			continue
		}
		out.route(hard, s.m, s.r, s.err)
	}
	wg.Wait()
}

// dispatch hands m to an ordered node's workers and its slot to the
// reorder buffer; false means the hard stop came first (m is resolved).
func (p *Pipeline) dispatch(hard context.Context, out *outlet, m *Message, jobs, pending chan<- *slot) bool {
	s := &slot{m: m, done: make(chan struct{})}
	select {
	case jobs <- s:
	case <-hard.Done():
		out.abandon(m)
		return false
	}
	select {
	case pending <- s:
	case <-hard.Done():
		<-s.done
		out.abandonResult(s.m, s.r)
		return false
	}
	return true
}
