// Package analytics records OpenFeature flag evaluations to CSV files for experiment
// analysis: which variant each user got, when, and why. The hook only copies a few
// fields into a bounded channel on the evaluation path; a writer goroutine formats,
// buffers, rotates and flushes. When the writer falls behind, records are dropped and
// counted instead of slowing evaluations down.
package analytics

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
)

// Defaults for Config's zero fields.
const (
	DefaultPrefix        = "evaluations"
	DefaultMaxBytes      = 64 << 20
	DefaultMaxAge        = time.Hour
	DefaultBufferSize    = 8192
	DefaultFlushInterval = time.Second
)

// Config says where and how evaluations are recorded.
type Config struct {
	// Dir receives the CSV files (created if missing). Required.
	Dir string
	// Prefix starts every file name: <prefix>-<UTC start>-<pid>-<seq>.csv.
	Prefix string
	// Attributes are evaluation-context attributes recorded as attr_<name> columns.
	Attributes []string
	// HashTargetingKey replaces the targeting key by its hex SHA-256, or by its hex
	// HMAC-SHA256 with Salt when Salt is set, so files hold no raw user ids.
	HashTargetingKey bool
	Salt             []byte
	// MaxBytes and MaxAge start a new file when the current one reaches the size or age.
	// Negative disables that trigger.
	MaxBytes int64
	MaxAge   time.Duration
	// BufferSize bounds the queue between evaluations and the writer.
	BufferSize int
	// FlushInterval is how often buffered rows reach the file.
	FlushInterval time.Duration
	Logger        *slog.Logger
	// Now is the clock (tests).
	Now func() time.Time
}

type record struct {
	at        int64 // unix nanoseconds
	flag      string
	variant   string
	value     any
	reason    openfeature.Reason
	errorCode openfeature.ErrorCode
	// ec is kept whole: EvaluationContext is immutable (the SDK copies attributes on
	// construction and merges into new maps), so the writer can read the targeting key
	// and attributes later and the evaluation path allocates nothing.
	ec openfeature.EvaluationContext
}

// Hook is the OpenFeature hook. Register it with client.AddHooks or
// openfeature.AddHooks; call Close on shutdown.
type Hook struct {
	openfeature.UnimplementedHook

	cfg Config
	// mu guards pending and closed. Evaluations append to pending; the writer swaps it
	// for an empty slice and formats the batch outside the lock. A mutex and an append
	// cost less than a channel send, and a full buffer just drops.
	mu      sync.Mutex
	pending []record
	closed  bool
	wake    chan struct{}
	wakeAt  int
	flushRq chan chan error
	stop    chan struct{}
	done    chan struct{}
	dropped atomic.Uint64
	written atomic.Uint64
	once    sync.Once
	err     error // writer's final error, read after done
}

// New creates the directory and starts the writer.
func New(cfg Config) (*Hook, error) {
	if cfg.Dir == "" {
		return nil, errors.New("analytics: Dir is required")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.BufferSize <= 0 {
		cfg.BufferSize = DefaultBufferSize
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("analytics: %w", err)
	}
	h := &Hook{
		cfg:     cfg,
		pending: make([]record, 0, cfg.BufferSize),
		wake:    make(chan struct{}, 1),
		wakeAt:  max(cfg.BufferSize/4, 1),
		flushRq: make(chan chan error),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go newWriter(cfg, h).run()
	return h, nil
}

func newWriter(cfg Config, h *Hook) *writer {
	w := &writer{cfg: cfg, hook: h, header: Header(cfg.Attributes) + "\n", spare: make([]record, 0, cfg.BufferSize)}
	if cfg.HashTargetingKey {
		if len(cfg.Salt) > 0 {
			w.mac = hmac.New(sha256.New, cfg.Salt)
		} else {
			w.mac = sha256.New()
		}
	}
	return w
}

// Finally records the evaluation (it runs after success and error alike). It never
// blocks: with the queue full the record is dropped and counted.
func (h *Hook) Finally(_ context.Context, hc openfeature.HookContext, d openfeature.InterfaceEvaluationDetails, _ openfeature.HookHints) {
	r := record{
		at:        h.cfg.Now().UnixNano(),
		flag:      d.FlagKey,
		variant:   d.Variant,
		value:     d.Value,
		reason:    d.Reason,
		errorCode: d.ErrorCode,
		ec:        hc.EvaluationContext(),
	}
	if r.flag == "" {
		r.flag = hc.FlagKey()
	}
	h.mu.Lock()
	if h.closed || len(h.pending) == cap(h.pending) {
		h.mu.Unlock()
		h.dropped.Add(1)
		return
	}
	h.pending = append(h.pending, r)
	n := len(h.pending)
	h.mu.Unlock()
	// The writer polls; wake it early only when the buffer fills up, so the usual
	// evaluation does not pay for a goroutine handoff.
	if n == h.wakeAt {
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
}

// Dropped is the number of evaluations not recorded because the queue was full or the
// hook closed.
func (h *Hook) Dropped() uint64 { return h.dropped.Load() }

// Written is the number of rows written to files so far.
func (h *Hook) Written() uint64 { return h.written.Load() }

// Flush waits until every evaluation queued before the call is written to the file.
func (h *Hook) Flush(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case h.flushRq <- reply:
	case <-h.done:
		return errors.New("analytics: hook closed")
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops recording, writes what is queued, flushes and closes the file. Later
// evaluations are counted as dropped.
func (h *Hook) Close(ctx context.Context) error {
	h.once.Do(func() {
		h.mu.Lock()
		h.closed = true
		h.mu.Unlock()
		close(h.stop)
	})
	select {
	case <-h.done:
		return h.err
	case <-ctx.Done():
		return fmt.Errorf("analytics close: %w", ctx.Err())
	}
}

// pollInterval is how often the writer drains the queue when nobody wakes it.
const pollInterval = 10 * time.Millisecond

// writer owns the files; only its goroutine touches them.
type writer struct {
	cfg    Config
	hook   *Hook
	header string
	mac    hash.Hash

	spare   []record
	sum     []byte
	f       *os.File
	bw      *bufio.Writer
	size    int64
	opened  time.Time
	seq     int
	line    []byte
	lastErr error
}

func (w *writer) run() {
	defer close(w.hook.done)
	poll := time.NewTicker(pollInterval)
	defer poll.Stop()
	lastFlush := time.Now()
	for {
		select {
		case <-w.hook.wake:
			w.drain()
		case <-poll.C:
			w.drain()
			if time.Since(lastFlush) >= w.cfg.FlushInterval {
				lastFlush = time.Now()
				w.flush()
				if w.f != nil && w.cfg.MaxAge > 0 && w.cfg.Now().Sub(w.opened) >= w.cfg.MaxAge {
					w.closeFile()
				}
			}
		case reply := <-w.hook.flushRq:
			w.drain()
			reply <- w.flush()
		case <-w.hook.stop:
			w.drain()
			w.closeFile()
			w.hook.err = w.lastErr
			return
		}
	}
}

// drain takes the pending records (leaving the spare slice in their place) and
// writes them.
func (w *writer) drain() {
	h := w.hook
	h.mu.Lock()
	batch := h.pending
	h.pending = w.spare[:0]
	h.mu.Unlock()
	for i := range batch {
		w.write(batch[i])
	}
	clear(batch) // drop references to values and attributes
	w.spare = batch
}

func (w *writer) write(r record) {
	if w.f != nil && ((w.cfg.MaxBytes > 0 && w.size >= w.cfg.MaxBytes) || (w.cfg.MaxAge > 0 && time.Unix(0, r.at).Sub(w.opened) >= w.cfg.MaxAge)) {
		w.closeFile()
	}
	if w.f == nil {
		if err := w.open(time.Unix(0, r.at)); err != nil {
			w.fail(err)
			w.hook.dropped.Add(1)
			return
		}
	}
	b := w.appendRow(w.line[:0], r)
	w.line = b
	n, err := w.bw.Write(b)
	w.size += int64(n)
	if err != nil {
		w.fail(err)
		return
	}
	w.hook.written.Add(1)
}

// appendRow formats one record as a CSV line (with the newline).
func (w *writer) appendRow(b []byte, r record) []byte {
	b = appendTimestamp(b, time.Unix(0, r.at))
	b = append(b, ',')
	b = appendField(b, r.flag)
	b = append(b, ',')
	b = appendField(b, r.variant)
	b = append(b, ',')
	b = appendField(b, formatValue(r.value))
	b = append(b, ',')
	b = appendField(b, string(r.reason))
	b = append(b, ',')
	b = appendField(b, string(r.errorCode))
	b = append(b, ',')
	b = w.appendTargeting(b, r.ec.TargetingKey())
	for _, a := range w.cfg.Attributes {
		b = append(b, ',')
		b = appendField(b, formatValue(r.ec.Attribute(a)))
	}
	return append(b, '\n')
}

// appendTargeting appends the targeting key field, hashed when configured (hex digits
// never need quoting).
func (w *writer) appendTargeting(b []byte, key string) []byte {
	if w.mac == nil || key == "" {
		return appendField(b, key)
	}
	w.mac.Reset()
	w.mac.Write([]byte(key))
	w.sum = w.mac.Sum(w.sum[:0])
	return hex.AppendEncode(b, w.sum)
}

func (w *writer) open(now time.Time) error {
	for {
		w.seq++
		name := filepath.Join(w.cfg.Dir, fmt.Sprintf("%s-%s-%d-%04d.csv", w.cfg.Prefix, now.UTC().Format("20060102T150405Z"), os.Getpid(), w.seq))
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("analytics: open %s: %w", name, err)
		}
		w.f, w.bw, w.opened = f, bufio.NewWriterSize(f, 64<<10), now
		w.lastErr = nil
		n, err := w.bw.WriteString(w.header)
		w.size = int64(n)
		return err
	}
}

func (w *writer) flush() error {
	if w.bw == nil {
		return w.lastErr
	}
	if err := w.bw.Flush(); err != nil {
		w.fail(fmt.Errorf("analytics: write %s: %w", w.f.Name(), err))
	}
	return w.lastErr
}

func (w *writer) closeFile() {
	if w.f == nil {
		return
	}
	w.flush()
	if err := w.f.Close(); err != nil {
		w.fail(fmt.Errorf("analytics: close %s: %w", w.f.Name(), err))
	}
	w.f, w.bw = nil, nil
}

func (w *writer) fail(err error) {
	if w.lastErr == nil || w.lastErr.Error() != err.Error() {
		w.cfg.Logger.Error("analytics writer", "err", err)
	}
	w.lastErr = err
}
