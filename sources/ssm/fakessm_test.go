package ssm

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeSSM answers the SSM JSON protocol (POST, X-Amz-Target, application/x-amz-json-1.1)
// for the three read operations the source uses, paging exactly as AWS documents
// (MaxResults honoured). moto ignores MaxResults on DescribeParameters (always 10 per
// page), so the "20 listing calls for 1,000 parameters" property is checked here,
// while correctness against a real implementation is checked on moto.
// fail, when set, may answer a request instead (error injection).
type fakeSSM struct {
	t      testing.TB
	mu     sync.Mutex
	params map[string]fakeParam
	hits   map[string]int                                   // requests by operation, retries included
	fail   func(op string, attempt int) (int, string, bool) // status, body, handled
	srv    *httptest.Server
}

type fakeParam struct {
	Name    string `json:"Name"`
	Type    string `json:"Type"`
	Value   string `json:"Value,omitempty"`
	Version int64  `json:"Version"`
}

func newFakeSSM(t testing.TB) *fakeSSM {
	f := &fakeSSM{t: t, params: map[string]fakeParam{}, hits: map[string]int{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSSM) put(name, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.params[name]
	f.params[name] = fakeParam{Name: name, Type: "String", Value: value, Version: p.Version + 1}
}

func (f *fakeSSM) del(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.params, name)
}

func (f *fakeSSM) hitCount(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[op]
}

func (f *fakeSSM) serve(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "AmazonSSM.")
	if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-amz-json-1.1") {
		f.t.Errorf("fake ssm: unexpected request %s %s (%s)", r.Method, op, r.Header.Get("Content-Type"))
	}
	body, _ := io.ReadAll(r.Body)
	var in struct {
		Path             string
		Recursive        bool
		MaxResults       int
		NextToken        string
		Names            []string
		ParameterFilters []struct {
			Key    string
			Option string
			Values []string
		}
	}
	if err := json.Unmarshal(body, &in); err != nil {
		f.t.Errorf("fake ssm: %s body: %v", op, err)
	}
	f.mu.Lock()
	f.hits[op]++
	attempt := f.hits[op]
	fail := f.fail
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if fail != nil {
		if status, msg, ok := fail(op, attempt); ok {
			w.WriteHeader(status)
			io.WriteString(w, msg)
			return
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out any
	switch op {
	case "GetParametersByPath":
		out = f.page(in.Path, in.Recursive, in.MaxResults, 10, in.NextToken, true)
	case "DescribeParameters":
		if len(in.ParameterFilters) != 1 || in.ParameterFilters[0].Key != "Path" || len(in.ParameterFilters[0].Values) != 1 {
			f.t.Errorf("fake ssm: DescribeParameters without a single Path filter: %s", body)
		}
		pf := in.ParameterFilters[0]
		prefix := strings.TrimSuffix(pf.Values[0], "/") + "/"
		out = f.page(prefix, pf.Option == "Recursive", in.MaxResults, 50, in.NextToken, false)
	case "GetParameters":
		if len(in.Names) > 10 {
			f.t.Errorf("fake ssm: GetParameters with %d names (max 10)", len(in.Names))
		}
		res := struct {
			Parameters        []fakeParam
			InvalidParameters []string
		}{Parameters: []fakeParam{}}
		for _, n := range in.Names {
			if p, ok := f.params[n]; ok {
				res.Parameters = append(res.Parameters, p)
			} else {
				res.InvalidParameters = append(res.InvalidParameters, n)
			}
		}
		out = res
	default:
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"__type":"UnknownOperationException","message":"`+op+`"}`)
		return
	}
	json.NewEncoder(w).Encode(out)
}

// page lists parameters under prefix in name order, max (or limit) per page, with
// the offset as the token.
func (f *fakeSSM) page(prefix string, recursive bool, max, limit int, token string, values bool) any {
	if max <= 0 || max > limit {
		f.t.Errorf("fake ssm: MaxResults %d outside 1..%d", max, limit)
		max = limit
	}
	var names []string
	for n := range f.params {
		rest, ok := strings.CutPrefix(n, prefix)
		if ok && (recursive || !strings.Contains(rest, "/")) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	start, _ := strconv.Atoi(token)
	end := min(start+max, len(names))
	res := struct {
		Parameters []fakeParam
		NextToken  string `json:",omitempty"`
	}{Parameters: []fakeParam{}}
	for _, n := range names[start:end] {
		p := f.params[n]
		if !values {
			p.Value = ""
		}
		res.Parameters = append(res.Parameters, p)
	}
	if end < len(names) {
		res.NextToken = strconv.Itoa(end)
	}
	return res
}
