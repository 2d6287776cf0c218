package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/sources"
	"github.com/flagsync/flagsync/transport"
)

// guardFile is the guard state kept across restarts and shared with `flagsync sync
// --once` runs of the same configuration (guards.stateFile): per source the flag
// keys it contributed to the accepted snapshot, its recent removals and its hold.
// It holds keys and times only, never values: after a restart a withheld flag keeps
// its definition from the previous snapshot.
type guardFile struct {
	Version int                        `json:"version"`
	Whole   guardFileEntry             `json:"whole"`
	Sources map[string]*guardFileEntry `json:"sources"`
}

type guardFileEntry struct {
	Accepted  []string             `json:"accepted,omitempty"`
	Recent    map[string]time.Time `json:"recent,omitempty"`
	Held      []string             `json:"held,omitempty"`
	HeldSince time.Time            `json:"heldSince,omitzero"`
	Reason    string               `json:"reason,omitempty"`
}

// StatePath is where the guard state is kept: guards.stateFile, else next to the
// file output (<outputs.file.path>.guards.json); "" keeps it in memory only.
func (c *Config) StatePath() string {
	if c.Guards.StateFile != "" {
		return c.Guards.StateFile
	}
	if c.Outputs.File != nil && c.Outputs.File.Path != "" {
		return c.Outputs.File.Path + ".guards.json"
	}
	return ""
}

// stateFileInfo identifies a version of the state file, to tell whether another
// process (a `flagsync sync --once --force`) wrote it since this daemon did.
type stateFileInfo struct {
	size    int64
	modTime time.Time
}

func statOf(path string) stateFileInfo {
	fi, err := os.Stat(path)
	if err != nil {
		return stateFileInfo{}
	}
	return stateFileInfo{size: fi.Size(), modTime: fi.ModTime()}
}

// loadState reads the guard state file when it is new to this daemon: at the first
// publish, and whenever another process wrote it since (then the outputs are read
// again too, since that process published). Sources that already have an accepted
// contribution (carried over a reload) keep theirs, except that keys the file no
// longer lists were accepted as removed elsewhere. Callers hold syncMu.
func (d *Daemon) loadState() {
	path := d.cfg.StatePath()
	if path == "" {
		return
	}
	info := statOf(path)
	if d.stateLoaded && info == d.stateInfo {
		return
	}
	external := d.stateLoaded
	if !d.stateLoaded {
		// Temp files of a writer killed mid-write (the rename never happened).
		stale, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*"))
		for _, f := range stale {
			_ = os.Remove(f)
		}
	}
	d.stateLoaded, d.stateInfo = true, info
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	var st guardFile
	if err == nil {
		err = json.Unmarshal(data, &st)
	}
	if err != nil {
		// Without it, the whole-set guard still compares with the previous snapshot.
		d.log.Warn("cannot read the guard state; per-source baselines start over", "path", path, "err", err)
		return
	}
	if external {
		// Only the guard state is taken: the snapshot that process wrote is not ours
		// to serve (it may come from other sources); the outputs' repair puts ours
		// back above its generation.
		d.log.Info("guard state written by another flagsync process; taking it", "path", path)
	}
	d.mu.Lock()
	cur := d.current
	d.mu.Unlock()
	d.whole.recent = st.Whole.Recent
	for _, s := range d.srcs {
		e := st.Sources[s.cfg.Name]
		if e == nil || s.reconfigured {
			s.reconfigured = false // from now on, the file is this entry's
			continue
		}
		s.guard.recent = e.Recent
		if external && s.guard.held != nil && len(e.Held) == 0 {
			// Another process (flagsync sync --once --force) released this hold: its
			// withheld removals are accepted, for the whole-set guard too.
			d.releaseWhole = true
		}
		s.guard.held, s.guard.heldSince, s.guard.reason = nil, time.Time{}, ""
		if len(e.Held) > 0 {
			s.guard.held, s.guard.heldSince, s.guard.reason = map[string]bool{}, e.HeldSince, e.Reason
			for _, k := range e.Held {
				s.guard.held[k] = true
			}
			d.metrics.SourceHeld.WithLabelValues(s.cfg.Name).Set(1)
		} else {
			d.metrics.SourceHeld.WithLabelValues(s.cfg.Name).Set(0)
		}
		if s.accepted.len() > 0 {
			s.accepted = s.accepted.only(e.Accepted)
			continue
		}
		// After a restart: the source's flags as published stand for what it
		// contributed, so its removals are measured (and withheld) as before.
		defs := make(map[string]*flagset.Flag, len(e.Accepted))
		for _, k := range e.Accepted {
			if cur == nil || cur.set == nil {
				break
			}
			if f, ok := cur.set.Flag(k); ok {
				defs[k] = f
			}
		}
		s.accepted = accepted{defs: defs, ovs: map[string]sources.Overlay{}}
	}
	d.recordGuardStatus()
}

// saveState writes the guard state file when it changed. A failure is logged: the
// guards still work in memory.
func (d *Daemon) saveState() {
	path := d.cfg.StatePath()
	if path == "" {
		return
	}
	st := guardFile{Version: 1, Whole: guardFileEntry{Recent: d.whole.recent}, Sources: map[string]*guardFileEntry{}}
	for _, s := range d.srcs {
		e := &guardFileEntry{Recent: s.guard.recent, HeldSince: s.guard.heldSince, Reason: s.guard.reason}
		s.accepted.each(func(k string) { e.Accepted = append(e.Accepted, k) })
		slices.Sort(e.Accepted)
		if s.guard.held != nil {
			e.Held = slices.Sorted(mapKeys(s.guard.held))
		}
		st.Sources[s.cfg.Name] = e
	}
	data, err := json.Marshal(st)
	if err != nil {
		d.log.Warn("cannot encode the guard state", "err", err)
		return
	}
	if bytes.Equal(data, d.stateSaved) {
		return
	}
	if err := transport.WriteFileAtomic(path, data, 0o600); err != nil {
		d.log.Warn("cannot write the guard state; holds and baselines will not survive a restart", "path", path, "err", err)
		return
	}
	d.stateSaved = data
	d.stateInfo = statOf(path)
	d.stateLoaded = true
}

// only is a keeping just the given keys.
func (a accepted) only(keys []string) accepted {
	keep := make(map[string]bool, len(keys))
	for _, k := range keys {
		keep[k] = true
	}
	out := accepted{defs: make(map[string]*flagset.Flag, len(a.defs)), ovs: make(map[string]sources.Overlay, len(a.ovs)), secret: map[string]bool{}}
	for k, v := range a.defs {
		if keep[k] {
			out.defs[k] = v
		}
	}
	for k, v := range a.ovs {
		if keep[k] {
			out.ovs[k] = v
		}
	}
	for k := range a.secret {
		if keep[k] {
			out.secret[k] = true
		}
	}
	return out
}
