package evolve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATS layout: jobs go to the work-queue stream JobsStream on subject
// "namm.jobs.<queue>" and are pulled by the durable consumer WorkerConsumer
// (explicit acks, AckWait, MaxDeliver: a job whose worker dies unacked is
// delivered again to another); results go to ResultsStream on
// "namm.results.<queue>". The queue name separates coordinators that share a
// server.
const (
	JobsStream     = "NAMM_JOBS"
	ResultsStream  = "NAMM_RESULTS"
	WorkerConsumer = "namm-workers"
	jobsPrefix     = "namm.jobs."
	resultsPrefix  = "namm.results."
)

// NATSOptions tune the work queue.
type NATSOptions struct {
	// AckWait is how long a job may stay unacknowledged before it is
	// delivered again (workers extend it while they work). Default 60 s.
	AckWait time.Duration
	// MaxDeliver is how many times a job is delivered before the batch fails.
	// Default 5.
	MaxDeliver int
	// Queue names this coordinator's subjects (letters, digits, - and _).
	// Default "default".
	Queue string
}

func (o *NATSOptions) setDefaults() error {
	if o.AckWait == 0 {
		o.AckWait = 60 * time.Second
	}
	if o.MaxDeliver == 0 {
		o.MaxDeliver = 5
	}
	if o.Queue == "" {
		o.Queue = "default"
	}
	if o.AckWait < 100*time.Millisecond || o.MaxDeliver < 1 {
		return fmt.Errorf("nats: AckWait %v (>= 100ms) and MaxDeliver %d (>= 1) out of range", o.AckWait, o.MaxDeliver)
	}
	for _, r := range o.Queue {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("nats: queue name %q: only letters, digits, - and _", o.Queue)
		}
	}
	return nil
}

// NATSPool is a Pool whose jobs are run by Workers over NATS JetStream.
type NATSPool struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	opts NATSOptions
	mu   sync.Mutex // one batch at a time
}

// NewNATSPool connects to url, creates (or updates) the streams and the
// workers' consumer, and drops jobs a previous coordinator of the same queue
// left behind.
func NewNATSPool(ctx context.Context, url string, opts NATSOptions) (*NATSPool, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	nc, err := nats.Connect(url, nats.Name("namm-evolve"), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("nats: connect %s: %w", url, err)
	}
	p := &NATSPool{nc: nc, opts: opts}
	if err := p.setup(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	return p, nil
}

func (p *NATSPool) setup(ctx context.Context) error {
	var err error
	if p.js, err = jetstream.New(p.nc); err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	jobs, err := p.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: JobsStream, Subjects: []string{jobsPrefix + ">"},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage})
	if err != nil {
		return fmt.Errorf("nats: stream %s: %w", JobsStream, err)
	}
	if _, err := p.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: ResultsStream, Subjects: []string{resultsPrefix + ">"},
		Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage, MaxAge: time.Hour}); err != nil {
		return fmt.Errorf("nats: stream %s: %w", ResultsStream, err)
	}
	if _, err := p.js.CreateOrUpdateConsumer(ctx, JobsStream, jetstream.ConsumerConfig{Durable: WorkerConsumer,
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: p.opts.AckWait, MaxDeliver: p.opts.MaxDeliver,
		FilterSubject: jobsPrefix + ">", MaxAckPending: 10000}); err != nil {
		return fmt.Errorf("nats: consumer %s: %w", WorkerConsumer, err)
	}
	if err := jobs.Purge(ctx, jetstream.WithPurgeSubject(jobsPrefix+p.opts.Queue)); err != nil {
		return fmt.Errorf("nats: purge stale jobs: %w", err)
	}
	return nil
}

// maxDeliveriesAdvisory is the part of the server's advisory we read.
type maxDeliveriesAdvisory struct {
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries int    `json:"deliveries"`
}

// Run implements Pool.
func (p *NATSPool) Run(ctx context.Context, jobs []Job, onResult func(Result)) ([]Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, err := newCollector(jobs, onResult)
	if err != nil {
		return nil, err
	}
	if len(jobs) == 0 {
		return nil, nil
	}
	jobSubject, resultSubject := jobsPrefix+p.opts.Queue, resultsPrefix+p.opts.Queue

	// Results: read everything published after now.
	rs, err := p.js.Stream(ctx, ResultsStream)
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	info, err := rs.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	cons, err := p.js.OrderedConsumer(ctx, ResultsStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{resultSubject},
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: info.State.LastSeq + 1})
	if err != nil {
		return nil, fmt.Errorf("nats: results consumer: %w", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		var r Result
		if err := json.Unmarshal(m.Data(), &r); err != nil {
			c.fail(fmt.Errorf("nats: bad result on %s: %w", m.Subject(), err))
			return
		}
		c.add(r)
	})
	if err != nil {
		return nil, fmt.Errorf("nats: results consumer: %w", err)
	}
	defer cc.Stop()

	// A job delivered MaxDeliver times without an answer fails the batch.
	var seqMu sync.Mutex
	seqToJob := map[uint64]int{}
	adv, err := p.nc.Subscribe("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES."+JobsStream+"."+WorkerConsumer, func(m *nats.Msg) {
		var a maxDeliveriesAdvisory
		if json.Unmarshal(m.Data, &a) != nil {
			return
		}
		seqMu.Lock()
		i, ok := seqToJob[a.StreamSeq]
		seqMu.Unlock()
		if ok {
			c.fail(fmt.Errorf("nats: job %d (%s#%d) was delivered %d times without an answer (workers dying, too slow for AckWait %v, or refusing it: a worker with another model says so in its log)",
				i, jobs[i].Spec, jobs[i].Sample, a.Deliveries, p.opts.AckWait))
		}
	})
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	defer adv.Unsubscribe()

	futures := make([]jetstream.PubAckFuture, len(jobs))
	for i, j := range jobs {
		j.ReplyTo = resultSubject
		data, err := json.Marshal(j)
		if err != nil {
			return nil, fmt.Errorf("nats: %w", err)
		}
		if futures[i], err = p.js.PublishAsync(jobSubject, data); err != nil {
			p.purge(jobSubject)
			return nil, fmt.Errorf("nats: publish job %d: %w", i, err)
		}
	}
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			seqMu.Lock()
			seqToJob[ack.Sequence] = i
			seqMu.Unlock()
		case err := <-f.Err():
			p.purge(jobSubject)
			return nil, fmt.Errorf("nats: publish job %d: %w", i, err)
		case <-ctx.Done():
			p.purge(jobSubject)
			return nil, ctx.Err()
		}
	}
	res, err := c.wait(ctx)
	if err != nil {
		p.purge(jobSubject) // don't leave a failed batch's jobs to the workers
	}
	return res, err
}

func (p *NATSPool) purge(subject string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if s, err := p.js.Stream(ctx, JobsStream); err == nil {
		s.Purge(ctx, jetstream.WithPurgeSubject(subject))
	}
}

// Close implements Pool.
func (p *NATSPool) Close() error {
	p.nc.Close()
	return nil
}

// Worker runs jobs from the NATS work queue with an Evaluator.
type Worker struct {
	Eval *Evaluator
	// Concurrency is the number of jobs run at once (default 1).
	Concurrency int
	// Messages receives one line per problem (nil: none).
	Messages func(string)
	// beforeReply, if set, is called after a job is evaluated and before its
	// result is sent (tests kill workers there).
	beforeReply func(Job)

	// IdleExit > 0 makes Run return ErrIdle after that long without a job
	// (the coordinator has finished); 0 waits for the next run.
	IdleExit time.Duration
	// IdleNotice is how long without a job before the worker says that it
	// is waiting for the next run (default 1 minute).
	IdleNotice time.Duration

	refusedMu sync.Mutex
	refused   map[string]bool // reasons already reported

	lastJob  atomic.Int64 // unix nanoseconds of the last job taken, or of the start
	done     atomic.Int64 // jobs whose result was sent
	idleSaid atomic.Bool  // the waiting message was said since the last job
	fetchMu  sync.Mutex
	fetchErr string // last fetch error reported (each is said once in a row)
}

// ErrIdle is returned by Worker.Run after Worker.IdleExit without a job.
var ErrIdle = errors.New("nats: no jobs for the idle time: worker stopped")

// refuseDelay is how long a refused job waits before it is delivered again,
// and how long a refusing worker waits before it fetches another: time for
// the workers that can run it to take it.
var refuseDelay = 2 * time.Second

// errRefused marks a job this worker cannot run (another model, another
// prompt generator) and handed back for the others.
var errRefused = errors.New("job refused")

// ErrWorkerConnClosed is returned by Worker.Run when its connection closed.
var ErrWorkerConnClosed = errors.New("nats: worker connection closed")

// Run pulls and answers jobs until ctx ends or the connection closes. It
// waits for the coordinator to create the consumer.
func (w *Worker) Run(ctx context.Context, nc *nats.Conn) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	var cons jetstream.Consumer
	for {
		if cons, err = js.Consumer(ctx, JobsStream, WorkerConsumer); err == nil {
			break
		}
		if nc.IsClosed() {
			return ErrWorkerConnClosed
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	ackWait := 30 * time.Second
	if info, err := cons.Info(ctx); err == nil {
		ackWait = info.Config.AckWait
	}
	w.lastJob.Store(time.Now().UnixNano())
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, max(w.Concurrency, 1))
	for range max(w.Concurrency, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- w.loop(ctx, nc, js, cons, ackWait)
			cancel() // one loop's end (idle, closed connection) ends the others
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// idle checks the time since the last job: ErrIdle past IdleExit, and one
// message past IdleNotice.
func (w *Worker) idle() error {
	since := time.Since(time.Unix(0, w.lastJob.Load()))
	if w.IdleExit > 0 && since >= w.IdleExit {
		return ErrIdle
	}
	notice := w.IdleNotice
	if notice <= 0 {
		notice = time.Minute
	}
	if since >= notice && w.idleSaid.CompareAndSwap(false, true) {
		w.say("no jobs for %v: the coordinator has finished or not started; waiting for the next run (Ctrl-C stops the worker)", since.Round(time.Second))
	}
	return nil
}

// fetchFailed reports a fetch error once while it repeats (a lost server
// fails every fetch until it comes back).
func (w *Worker) fetchFailed(err error) {
	w.fetchMu.Lock()
	defer w.fetchMu.Unlock()
	if msg := err.Error(); msg != w.fetchErr {
		w.fetchErr = msg
		w.say("fetch: %v (retrying)", err)
	}
}

func (w *Worker) say(format string, a ...any) {
	if w.Messages != nil {
		w.Messages(fmt.Sprintf(format, a...))
	}
}

func (w *Worker) loop(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, cons jetstream.Consumer, ackWait time.Duration) error {
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if nc.IsClosed() {
			return ErrWorkerConnClosed
		}
		if err := w.idle(); err != nil {
			return err
		}
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if nc.IsClosed() {
				return ErrWorkerConnClosed
			}
			w.fetchFailed(err)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		w.fetchMu.Lock()
		w.fetchErr = ""
		w.fetchMu.Unlock()
		for m := range batch.Messages() {
			w.lastJob.Store(time.Now().UnixNano())
			w.idleSaid.Store(false)
			err := w.handle(ctx, js, m, ackWait)
			switch {
			case errors.Is(err, errRefused):
				select { // leave the next jobs to the workers that can run them
				case <-ctx.Done():
				case <-time.After(refuseDelay):
				}
			case err != nil:
				if nc.IsClosed() {
					return ErrWorkerConnClosed
				}
				w.say("%v", err)
			}
		}
	}
}

// handle answers one job: it keeps the job alive while evaluating, sends the
// result, and only then acknowledges the job, so a worker that dies at any
// point leaves the job to be delivered again.
func (w *Worker) handle(ctx context.Context, js jetstream.JetStream, m jetstream.Msg, ackWait time.Duration) error {
	var job Job
	if err := json.Unmarshal(m.Data(), &job); err != nil {
		m.Term() // undecodable: no worker can run it
		return fmt.Errorf("bad job on %s: %w", m.Subject(), err)
	}
	if !strings.HasPrefix(job.ReplyTo, resultsPrefix) {
		m.Term()
		return fmt.Errorf("job %s/%d has no valid reply subject (%q)", job.Batch, job.Index, job.ReplyTo)
	}
	if err := w.Eval.Accepts(job); err != nil {
		// Another worker may have the right model: hand the job back (a
		// negative ack, redelivered after refuseDelay) instead of failing
		// the coordinator's batch with an error result.
		m.NakWithDelay(refuseDelay)
		w.refusedMu.Lock()
		if w.refused == nil {
			w.refused = map[string]bool{}
		}
		first := !w.refused[err.Error()]
		w.refused[err.Error()] = true
		w.refusedMu.Unlock()
		if first {
			w.say("refusing jobs, left to the other workers: %v", err)
		}
		return errRefused
	}
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(ackWait / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				m.InProgress()
			}
		}
	}()
	res := w.Eval.Run(job)
	close(stop)
	if w.beforeReply != nil {
		w.beforeReply(job)
	}
	data, err := json.Marshal(res)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := js.Publish(pctx, job.ReplyTo, data); err != nil {
		return fmt.Errorf("job %s/%d: send result: %w", job.Batch, job.Index, err)
	}
	w.done.Add(1)
	if err := m.Ack(); err != nil {
		return fmt.Errorf("job %s/%d: ack: %w", job.Batch, job.Index, err)
	}
	return nil
}

// Done is the number of jobs the worker evaluated and sent the result of
// (the server acknowledged the result).
func (w *Worker) Done() int64 { return w.done.Load() }

// EmbeddedNATS is an in-process NATS server with JetStream, listening on
// 127.0.0.1 only, its store in a temporary directory.
type EmbeddedNATS struct {
	srv *server.Server
	dir string
}

// storePrefix starts the name of an embedded server's store directory in
// the temporary directory; the owner's process id follows.
const storePrefix = "namm-nats-"

// StartEmbeddedNATS starts a server on a free loopback port. Store
// directories left by servers whose process died (kill -9) are removed.
func StartEmbeddedNATS() (*EmbeddedNATS, error) {
	removeStaleStores(os.TempDir())
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", storePrefix, os.Getpid()))
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: dir, NoLog: true, NoSigs: true, ServerName: "namm-embedded"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("nats: embedded server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		os.RemoveAll(dir)
		return nil, errors.New("nats: embedded server not ready after 10 s")
	}
	return &EmbeddedNATS{srv: srv, dir: dir}, nil
}

// URL is the server's client address (nats://127.0.0.1:PORT).
func (e *EmbeddedNATS) URL() string { return e.srv.ClientURL() }

// Close stops the server and removes its store.
func (e *EmbeddedNATS) Close() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	os.RemoveAll(e.dir)
}

// removeStaleStores removes the store directories in tmp whose owning
// process no longer runs.
func removeStaleStores(tmp string) {
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), storePrefix)
		pidText, _, ok2 := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || !ok2 || err != nil || !e.IsDir() || processAlive(pid) {
			continue
		}
		os.RemoveAll(filepath.Join(tmp, e.Name()))
	}
}
