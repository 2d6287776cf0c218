package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os/exec"
	"sync"
	"time"
)

const execOutputLimit = 64 << 10

type execSink struct {
	cfg ExecConfig
	log *slog.Logger
}

// deliver runs the command with the event JSON on stdin. Output (stdout and stderr,
// first 64 KiB) goes into the log; a non-zero exit or the timeout is a failed delivery.
// Commands are not retried: a smoke test that fails should be looked at, not re-run.
func (e *execSink) deliver(ctx context.Context, ev Event) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("exec %s: encode event: %w", e.cfg.Name, err)
	}
	timeout := durOr(e.cfg.Timeout, 30*time.Second)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.cfg.Command[0], e.cfg.Command[1:]...)
	cmd.Stdin = bytes.NewReader(body)
	out := &limitedBuffer{limit: execOutputLimit}
	cmd.Stdout, cmd.Stderr = out, out
	// A killed command's children may hold the pipes open; don't wait for them forever.
	cmd.WaitDelay = time.Second
	start := time.Now()
	err = cmd.Run()
	attrs := []any{"sink", e.cfg.Name, "type", ev.Type, "duration", time.Since(start), "output", out.String()}
	if ctx.Err() == context.DeadlineExceeded {
		e.log.Warn("notify exec timed out", attrs...)
		return fmt.Errorf("exec %s: timed out after %s", e.cfg.Name, timeout)
	}
	if err != nil {
		e.log.Warn("notify exec failed", append(attrs, "err", err)...)
		return fmt.Errorf("exec %s: %w", e.cfg.Name, err)
	}
	e.log.Info("notify exec done", attrs...)
	return nil
}

// limitedBuffer keeps the first limit bytes written to it and counts the rest.
type limitedBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	limit   int
	dropped int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	room := b.limit - b.buf.Len()
	if room >= len(p) {
		b.buf.Write(p)
	} else {
		if room > 0 {
			b.buf.Write(p[:room])
		}
		b.dropped += len(p) - max(room, 0)
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dropped > 0 {
		return fmt.Sprintf("%s… (%d more bytes)", b.buf.String(), b.dropped)
	}
	return b.buf.String()
}
