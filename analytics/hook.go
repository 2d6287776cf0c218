// Package analytics records OpenFeature flag evaluations to CSV files for experiment
// analysis: which variant each user got, when, and why. The hook only copies a few
// fields into a bounded queue on the evaluation path; a writer goroutine formats,
// buffers, rotates and flushes. When the writer falls behind, records are dropped and
// counted instead of slowing evaluations down.
package analytics

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
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

// Hook is the OpenFeature hook. Register it with client.AddHooks or
// openfeature.AddHooks; call Close on shutdown.
type Hook struct {
	openfeature.UnimplementedHook

	cfg Config
	// mu guards pending and closed. Evaluations encode into pending; the writer swaps
	// it for its empty spare queue and formats the batch outside the lock. A mutex and
	// an append cost less than a channel send, and a full buffer just drops.
	mu      sync.Mutex
	pending queue
	closed  bool
	// With the default clock, evaluations are stamped base's wall time plus the
	// monotonic time since base (time.Since reads one clock, time.Now two: half the
	// cost). The writer rebases at every drain, so a stamp is never more than one
	// drain interval's monotonic time away from a wall-clock reading. With a custom
	// Config.Now, monoClock is false and Now is called.
	monoClock bool
	base      time.Time
	baseUnix  int64
	wake      chan struct{}
	wakeAt    int
	flushRq   chan chan error
	stop      chan struct{}
	done      chan struct{}
	dropped   atomic.Uint64
	written   atomic.Uint64
	once      sync.Once
	err       error // writer's final error, read after done
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
	customClock := cfg.Now != nil
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("analytics: %w", err)
	}
	h := &Hook{
		cfg:     cfg,
		pending: newQueue(cfg),
		wake:    make(chan struct{}, 1),
		wakeAt:  max(cfg.BufferSize/4, 1),
		flushRq: make(chan chan error),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	if !customClock {
		h.monoClock = true
		h.rebase()
	}
	go newWriter(cfg, h).run()
	return h, nil
}

func newWriter(cfg Config, h *Hook) *writer {
	w := &writer{cfg: cfg, hook: h, header: Header(cfg.Attributes) + "\n", spare: newQueue(cfg)}
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
	var at int64
	if !h.monoClock {
		at = h.cfg.Now().UnixNano()
	}
	flag := d.FlagKey
	if flag == "" {
		flag = hc.FlagKey()
	}
	h.mu.Lock()
	if h.closed || h.pending.n >= h.cfg.BufferSize {
		h.mu.Unlock()
		h.dropped.Add(1)
		return
	}
	if h.monoClock {
		at = h.baseUnix + int64(time.Since(h.base))
	}
	h.pending.add(at, flag, d.Variant, string(d.Reason), string(d.ErrorCode), d.Value, hc.EvaluationContext(), h.cfg.Attributes)
	wake := h.pending.n == h.wakeAt || len(h.pending.buf) >= wakeBytes
	h.mu.Unlock()
	// The writer polls; wake it early only when the buffer fills up, so the usual
	// evaluation does not pay for a goroutine handoff. (A send to the full channel
	// fails without taking its lock.)
	if wake {
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
}

// rebase sets the default clock's base (under mu, or before the writer starts).
func (h *Hook) rebase() {
	h.base = time.Now()
	h.baseUnix = h.base.UnixNano()
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

// wakeBytes is the queue size at which Finally wakes the writer early. It keeps the
// queues small: their memory counts as live heap, and with the runtime's 4 MiB minimum
// heap goal every live byte makes garbage collection more frequent for the whole
// process.
const wakeBytes = 32 << 10

// writer owns the files; only its goroutine touches them.
type writer struct {
	cfg    Config
	hook   *Hook
	header string
	mac    hash.Hash

	spare queue
	// The targeting key hashed last and its hex digest: evaluations of one user come
	// in runs, and hashing is the writer's largest per-row cost.
	hashedKey []byte
	hexSum    []byte
	sum       []byte
	// The timestamp text up to the fraction ("2006-01-02T15:04:05.") for stampSec.
	stampSec    int64
	stampPrefix []byte
	scratch     []byte

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

// drain takes the pending records (leaving the empty spare queue in their place) and
// writes them.
func (w *writer) drain() {
	h := w.hook
	h.mu.Lock()
	batch := h.pending
	h.pending = w.spare
	if h.monoClock {
		h.rebase()
	}
	h.mu.Unlock()
	d := decoder{buf: batch.buf}
	for d.more() {
		w.write(&d, batch.objs)
	}
	batch.reset() // drops references to object values
	w.spare = batch
}

// write writes the record at d's position to the file, rotating first when due.
func (w *writer) write(d *decoder, objs []any) {
	b, at := w.appendRow(w.line[:0], d, objs)
	w.line = b
	if w.f != nil && ((w.cfg.MaxBytes > 0 && w.size >= w.cfg.MaxBytes) || (w.cfg.MaxAge > 0 && time.Duration(at-w.opened.UnixNano()) >= w.cfg.MaxAge)) {
		w.closeFile()
	}
	if w.f == nil {
		if err := w.open(time.Unix(0, at)); err != nil {
			w.fail(err)
			w.hook.dropped.Add(1)
			return
		}
	}
	n, err := w.bw.Write(b)
	w.size += int64(n)
	if err != nil {
		w.fail(err)
		return
	}
	w.hook.written.Add(1)
}

// appendRow formats the record at d's position as a CSV line (with the newline) and
// returns it with the record's time; objs holds the queue's object values.
func (w *writer) appendRow(b []byte, d *decoder, objs []any) ([]byte, int64) {
	at := d.int64()
	b = w.appendTimestamp(b, at)
	b = append(b, ',')
	b = appendField(b, d.bytes()) // flag
	b = append(b, ',')
	b = appendField(b, d.bytes()) // variant
	b = append(b, ',')
	b = w.appendValue(b, d.field(), objs)
	b = append(b, ',')
	b = appendField(b, d.bytes()) // reason
	b = append(b, ',')
	b = appendField(b, d.bytes()) // error code
	b = append(b, ',')
	b = w.appendTargeting(b, d.bytes())
	for range w.cfg.Attributes {
		b = append(b, ',')
		b = w.appendValue(b, d.field(), objs)
	}
	return append(b, '\n'), at
}

// appendTimestamp writes at (unix nanoseconds) as UTC RFC 3339 with exactly three
// fractional digits (truncated); the text up to the fraction is cached per second.
func (w *writer) appendTimestamp(b []byte, at int64) []byte {
	sec, ns := at/1e9, at%1e9
	if ns < 0 { // before 1970: floor, as time.Unix does
		sec, ns = sec-1, ns+1e9
	}
	if sec != w.stampSec || w.stampPrefix == nil {
		w.stampSec = sec
		w.stampPrefix = time.Unix(sec, 0).UTC().AppendFormat(w.stampPrefix[:0], "2006-01-02T15:04:05.")
	}
	ms := ns / 1e6
	b = append(b, w.stampPrefix...)
	return append(b, byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
}

// appendValue appends one value field as appendField(b, formatValue(v)) would (numbers
// and booleans never need quoting).
func (w *writer) appendValue(b []byte, f field, objs []any) []byte {
	switch f.kind {
	case kindNil:
		return b
	case kindFalse:
		return append(b, "false"...)
	case kindTrue:
		return append(b, "true"...)
	case kindString:
		return appendField(b, f.s)
	case kindFloat:
		return appendNumber(b, math.Float64frombits(f.num))
	case kindInt:
		return strconv.AppendInt(b, int64(f.num), 10)
	case kindUint:
		return strconv.AppendUint(b, f.num, 10)
	}
	w.scratch = appendJSON(w.scratch[:0], objs[f.num])
	return appendField(b, w.scratch)
}

// appendTargeting appends the targeting key field, hashed when configured (hex digits
// never need quoting).
func (w *writer) appendTargeting(b []byte, key []byte) []byte {
	if w.mac == nil || len(key) == 0 {
		return appendField(b, key)
	}
	if w.hexSum == nil || !bytes.Equal(key, w.hashedKey) {
		w.mac.Reset()
		w.mac.Write(key)
		w.sum = w.mac.Sum(w.sum[:0])
		w.hexSum = hex.AppendEncode(w.hexSum[:0], w.sum)
		w.hashedKey = append(w.hashedKey[:0], key...)
	}
	return append(b, w.hexSum...)
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
