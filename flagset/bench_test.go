package flagset

import (
	"bytes"
	"fmt"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user+system CPU time. Benchmarks report it per op
// next to wall time because the shared machine is often oversubscribed.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

const benchDoc = `{"flags":{
  "static":{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"on"},
  "targeting":{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"off",
    "targeting":{"if":[{"ends_with":[{"var":"email"},"@example.com"]},"on","off"]}},
  "fractional":{"state":"ENABLED","variants":{"red":"red","blue":"blue","green":"green"},"defaultVariant":"red",
    "targeting":{"fractional":[["red",50],["blue",30],["green",20]]}},
  "semver":{"state":"ENABLED","variants":{"new":true,"old":false},"defaultVariant":"old",
    "targeting":{"if":[{"sem_ver":[{"var":"appVersion"},">=","2.4.0-rc.1"]},"new","old"]}}
}}`

func BenchmarkEvaluate(b *testing.B) {
	s, ps, err := Load([]byte(benchDoc))
	if err != nil || len(ps) > 0 {
		b.Fatal(err, ps)
	}
	ctx := map[string]any{"targetingKey": "user-12345", "email": "someone@example.com", "appVersion": "2.4.1"}
	for _, c := range []struct {
		name string
		typ  Type
		def  any
	}{
		{"static", TypeBoolean, false},
		{"targeting", TypeBoolean, false},
		{"fractional", TypeString, ""},
		{"semver", TypeBoolean, false},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			var r Result
			start := cpuTime()
			for b.Loop() {
				r = s.Evaluate(c.name, c.typ, c.def, ctx)
			}
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
			if r.ErrorCode != CodeNone || r.Variant == "" {
				b.Fatalf("bad result %+v", r)
			}
		})
	}
}

// BenchmarkEvaluateNotFound is the FLAG_NOT_FOUND path (goal: <= 100 ns, 0 allocs).
func BenchmarkEvaluateNotFound(b *testing.B) {
	s, ps, err := Load([]byte(benchDoc))
	if err != nil || len(ps) > 0 {
		b.Fatal(err, ps)
	}
	ctx := map[string]any{"targetingKey": "user-12345"}
	b.ReportAllocs()
	var r Result
	for b.Loop() {
		r = s.Evaluate("no_such_flag", TypeBoolean, false, ctx)
	}
	if r.ErrorCode != CodeFlagNotFound {
		b.Fatalf("bad result %+v", r)
	}
}

// tenKFlagDoc is a document of n flags: most static, every 4th with targeting.
func tenKFlagDoc(n int) []byte {
	var buf bytes.Buffer
	buf.WriteString(`{"metadata":{"flagSetId":"bench"},"flags":{`)
	for i := 0; i < n; i++ {
		if i > 0 {
			buf.WriteByte(',')
		}
		if i%4 == 0 {
			fmt.Fprintf(&buf, `"flag_%d":{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"off",`+
				`"targeting":{"if":[{"in":[{"var":"country"},["CH","DE","AT"]]},"on",{"fractional":[["on",10],["off",90]]}]},`+
				`"metadata":{"owner":"team-%d","description":"flag number %d"}}`, i, i%7, i)
		} else {
			fmt.Fprintf(&buf, `"flag_%d":{"state":"ENABLED","variants":{"a":"alpha","b":"beta","c":"gamma"},"defaultVariant":"b",`+
				`"metadata":{"owner":"team-%d"}}`, i, i%7)
		}
	}
	buf.WriteString(`}}`)
	return buf.Bytes()
}

func BenchmarkParse(b *testing.B) {
	data := tenKFlagDoc(10000)
	b.Run("10k", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		start := cpuTime()
		for b.Loop() {
			s, ps, err := Load(data)
			if err != nil || len(ps) > 0 || s.Len() != 10000 {
				b.Fatal(err, ps)
			}
		}
		b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
	})
}
