// Package statuspage renders flagsync's read-only status page: every flag of the
// published snapshot (state, default variant, targeting, source, owner, expiry),
// every source (last success, last error, API calls), the revision, the last publish
// and the errors of the last sync. It is one server-rendered HTML page (html/template,
// no scripts, no external assets) that refreshes itself every 10 seconds.
package statuspage

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"sort"
	"time"

	"github.com/flagsync/flagsync/flagset"
)

// Data is what the daemon knows about its own state; the flags come from the
// snapshot itself. Zero values render as "never" / "none".
type Data struct {
	FlagSetID   string
	Version     string    // daemon version, shown in the footer
	Leader      string    // "leader", "standby", or "" when HA is off
	Fence       int64     // the leader's fence, 0 when not leader
	LastSync    time.Time // end of the last sync (successful or not)
	LastPublish time.Time // last successful publish of a new snapshot
	// Guard is why the last sync's result was held back (a safety guard), "" if not.
	Guard string
	// SyncErrors are the problems of the last sync (source errors, invalid flags).
	SyncErrors []string
	Sources    []Source
	Outputs    []Output
	// Now is the time expiries are judged against; zero means time.Now().
	Now time.Time
	// ExpiringWithin marks flags whose expiresAt is closer than this; default 14 days.
	ExpiringWithin time.Duration
	// Secret tells which flags' values come from a secret (an SSM SecureString): their
	// default variant, variant names and description are shown as Redacted, since a
	// variant name may be the secret itself. nil: no flag is secret.
	Secret func(key string) bool
}

// Redacted stands in for what a secret-derived flag would show.
const Redacted = "(secret: redacted)"

// Source is one configured source's health.
type Source struct {
	Name        string
	Type        string // ssm, consul, file, env
	LastSuccess time.Time
	LastError   string
	LastErrorAt time.Time
	APICalls    int64
	Flags       int // flags this source contributed in the last sync
}

//go:embed page.html.tmpl
var pageTemplate string

var page = template.Must(template.New("status").Funcs(template.FuncMap{
	"ago": ago,
}).Parse(pageTemplate))

// Output is one publish target's state (the JSON file, Redis).
type Output struct {
	Name        string // file, redis
	Target      string // path or redacted URL
	UpToDate    bool   // holds the current revision
	LastSuccess time.Time
	LastError   string
	LastErrorAt time.Time
}

// view is the template's input: Data plus the flags digested for display.
type view struct {
	Data
	Revision    string
	Generation  int64
	GeneratedAt time.Time
	Flags       []flagRow
	Counts      counts
	NoSnapshot  bool
	// OutputErrors are "name: error" of outputs whose last publish failed.
	OutputErrors []string
}

type counts struct {
	Flags, Enabled, Disabled, Targeted, Soon, Expired, SourceErrors int
}

type flagRow struct {
	Key, State, DefaultVariant, Variants, Source, Owner, Description string
	Targeting                                                        bool
	ExpiresAt                                                        string
	Expiry                                                           string // "", "soon", "expired", "invalid"
}

// Render writes the page for set (nil: no snapshot yet) and d.
func Render(w io.Writer, set *flagset.Set, d Data) error {
	now := d.Now
	if now.IsZero() {
		now = time.Now()
	}
	d.Now = now
	within := d.ExpiringWithin
	if within <= 0 {
		within = 14 * 24 * time.Hour
	}
	v := view{Data: d, NoSnapshot: set == nil}
	for _, s := range d.Sources {
		if s.LastError != "" {
			v.Counts.SourceErrors++
		}
	}
	for _, o := range d.Outputs {
		if o.LastError != "" {
			v.OutputErrors = append(v.OutputErrors, o.Name+": "+o.LastError)
		}
	}
	if set != nil {
		v.Revision = set.Revision()
		v.Generation = set.Generation()
		v.GeneratedAt, _ = set.GeneratedAt()
		for _, key := range set.Keys() {
			f, _ := set.Flag(key)
			row := flagRow{Key: key, State: string(f.State), Targeting: len(f.Targeting) > 0 && string(f.Targeting) != "null"}
			if f.DefaultVariant != nil {
				row.DefaultVariant = *f.DefaultVariant
			}
			names := make([]string, 0, len(f.Variants))
			for n := range f.Variants {
				names = append(names, n)
			}
			sort.Strings(names)
			for i, n := range names {
				if i > 0 {
					row.Variants += ", "
				}
				row.Variants += n
			}
			row.Owner = metaString(f.Metadata, flagset.MetaOwner)
			row.Source = metaString(f.Metadata, flagset.MetaSource)
			row.Description = metaString(f.Metadata, flagset.MetaDescription)
			if d.Secret != nil && d.Secret(key) {
				row.DefaultVariant, row.Variants, row.Description = Redacted, Redacted, ""
			}
			if exp := metaString(f.Metadata, flagset.MetaExpiresAt); exp != "" {
				row.ExpiresAt = exp
				t, err := time.Parse(time.RFC3339, exp)
				switch {
				case err != nil:
					row.Expiry = "invalid"
				case !t.After(now):
					row.Expiry = "expired"
					v.Counts.Expired++
				case t.Sub(now) < within:
					row.Expiry = "soon"
					v.Counts.Soon++
				}
			}
			v.Counts.Flags++
			if f.State == flagset.Disabled {
				v.Counts.Disabled++
			} else {
				v.Counts.Enabled++
			}
			if row.Targeting {
				v.Counts.Targeted++
			}
			v.Flags = append(v.Flags, row)
		}
	}
	if err := page.Execute(w, v); err != nil {
		return fmt.Errorf("status page: %w", err)
	}
	return nil
}

func metaString(m map[string]any, key string) string {
	switch v := m[key].(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}

// ago formats t relative to now for humans ("never" for the zero time).
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t).Round(time.Second)
	switch {
	case d < 0:
		return "in " + (-d).String()
	case d < time.Second:
		return "just now"
	case d < time.Hour:
		return d.String() + " ago"
	case d < 48*time.Hour:
		m := int(d.Round(time.Minute).Minutes())
		return fmt.Sprintf("%dh%02dm ago", m/60, m%60)
	default:
		return fmt.Sprintf("%d days ago", int(d.Hours()/24))
	}
}

// Handler serves the page at GET / (and HEAD); state is called once per request and
// returns the current snapshot (nil before the first one) and the daemon's data.
func Handler(state func() (*flagset.Set, Data)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		set, d := state()
		var buf bytes.Buffer
		if err := Render(&buf, set, d); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		// The page needs nothing but its own inline styles: forbid everything else.
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(buf.Bytes())
	})
}
