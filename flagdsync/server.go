// Package flagdsync serves flagd's flag sync protocol (flagd.sync.v1.FlagSyncService)
// from the daemon, so flagd and flagd's in-process providers (Go, Java, Node, Python,
// …) read the daemon's snapshot over gRPC and see every publish at once.
//
// One broadcaster encodes each new snapshot once; every stream waits for it on its
// own goroutine and sends the latest one when it can, so a slow client never delays
// the publish or the other clients, and skips the snapshots it was too slow for.
package flagdsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/flagsync/flagsync/daemon"
	"github.com/flagsync/flagsync/flagdsync/syncv1"
	"github.com/flagsync/flagsync/flagset"
)

// SelectorHeader is the metadata key newer flagd clients send the selector in.
const SelectorHeader = "flagd-selector"

// Snapshots is where the flag sets come from (daemon.Feed).
type Snapshots interface {
	// Current is the flag set served now (nil before the first) and a channel
	// closed when it is replaced.
	Current() (*flagset.Set, <-chan struct{})
}

// Authorizer decides a call from its Authorization value ("" when absent); nil lets
// it through. daemon.Server.AuthorizeRead is the daemon's.
type Authorizer func(authorization string) error

// Service implements flagd.sync.v1.FlagSyncService over a Snapshots.
type Service struct {
	syncv1.UnimplementedFlagSyncServiceServer

	snaps     Snapshots
	authorize Authorizer
	log       *slog.Logger
	metrics   *Metrics

	mu     sync.Mutex
	latest *payload // the encoded form of the last set seen; see payloadOf
}

// payload is one flag set encoded for the wire, shared by every stream.
type payload struct {
	set       *flagset.Set
	flagSetID string
	json      string
	err       error
}

// NewService serves snaps; authorize may be nil (every call allowed), metrics nil
// (unregistered ones).
func NewService(snaps Snapshots, authorize Authorizer, metrics *Metrics, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	return &Service{snaps: snaps, authorize: authorize, metrics: metrics, log: log}
}

// Register adds the service to s.
func (svc *Service) Register(s *grpc.Server) { syncv1.RegisterFlagSyncServiceServer(s, svc) }

// payloadOf encodes set once: the first stream to see a new set encodes it, every
// other one reuses that (sets are replaced, never mutated).
func (svc *Service) payloadOf(set *flagset.Set) *payload {
	svc.mu.Lock()
	defer svc.mu.Unlock()
	if svc.latest != nil && svc.latest.set == set {
		return svc.latest
	}
	p := &payload{set: set, flagSetID: set.FlagSetID()}
	b, err := set.Canonical()
	if err != nil {
		p.err = fmt.Errorf("encode snapshot %s: %w", set.Revision(), err)
		svc.log.Error("flagd sync: cannot encode the snapshot; streams keep the previous one", "err", p.err)
	} else {
		if in, err := inlineEvaluators(b); err != nil {
			svc.log.Warn("flagd sync: serving the snapshot with its $evaluators (some flagd clients cannot read nested $refs)", "revision", set.Revision(), "error", err)
		} else {
			b = in
		}
		p.json = string(b)
	}
	svc.latest = p
	return p
}

// SyncFlags sends the current snapshot, then every new one, until the client leaves.
// A client that cannot keep up gets only the latest snapshot when it can take one.
func (svc *Service) SyncFlags(req *syncv1.SyncFlagsRequest, stream grpc.ServerStreamingServer[syncv1.SyncFlagsResponse]) error {
	ctx := stream.Context()
	selector, err := svc.admit(ctx, req.GetSelector())
	if err != nil {
		return err
	}
	svc.metrics.Streams.Inc()
	defer svc.metrics.Streams.Dec()
	svc.log.Debug("flagd sync: stream opened", "providerId", req.GetProviderId(), "selector", selector)
	var sent *flagset.Set
	for {
		set, changed := svc.snaps.Current()
		if set != nil && set != sent {
			p := svc.payloadOf(set)
			if err := svc.checkSelector(p, selector); err != nil {
				return err
			}
			if p.err == nil { // else the stream keeps the previous one (payloadOf logged why)
				if err := stream.Send(&syncv1.SyncFlagsResponse{FlagConfiguration: p.json, SyncContext: emptyContext()}); err != nil {
					svc.log.Debug("flagd sync: stream closed", "providerId", req.GetProviderId(), "err", err)
					return err
				}
				svc.metrics.Sent.Inc()
			}
			sent = set
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil
		}
	}
}

// FetchAllFlags answers the current snapshot once.
func (svc *Service) FetchAllFlags(ctx context.Context, req *syncv1.FetchAllFlagsRequest) (*syncv1.FetchAllFlagsResponse, error) {
	selector, err := svc.admit(ctx, req.GetSelector())
	if err != nil {
		return nil, err
	}
	set, _ := svc.snaps.Current()
	if set == nil {
		return nil, status.Error(codes.Unavailable, "no snapshot published yet")
	}
	p := svc.payloadOf(set)
	if err := svc.checkSelector(p, selector); err != nil {
		return nil, err
	}
	if p.err != nil {
		return nil, status.Error(codes.Internal, "the snapshot cannot be encoded (see the daemon log)")
	}
	svc.metrics.Sent.Inc()
	return &syncv1.FetchAllFlagsResponse{FlagConfiguration: p.json}, nil
}

// GetMetadata is the sync context of older clients (deprecated in the protocol, still
// called by older providers): empty, as in SyncFlags.
func (svc *Service) GetMetadata(ctx context.Context, _ *syncv1.GetMetadataRequest) (*syncv1.GetMetadataResponse, error) {
	if _, err := svc.admit(ctx, ""); err != nil {
		return nil, err
	}
	return &syncv1.GetMetadataResponse{Metadata: emptyContext()}, nil
}

// emptyContext is the sync context the daemon sends: none. flagd clients add every
// sync-context value to each evaluation context, so anything sent there (flag-set
// metadata, say) would change what targeting sees and break parity with the Go and
// Python readers. It is sent empty rather than left out, so clients do not fall back
// to GetMetadata.
func emptyContext() *structpb.Struct { return &structpb.Struct{} }

// admit checks the caller's credentials and returns the selector it asked for (the
// Flagd-Selector header, else the request field).
func (svc *Service) admit(ctx context.Context, fromRequest string) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if svc.authorize != nil {
		var auth string
		if v := md.Get("authorization"); len(v) > 0 {
			auth = v[0]
		}
		if err := svc.authorize(auth); err != nil {
			code, msg := codes.Unavailable, err.Error()
			switch {
			case errors.Is(err, daemon.ErrNoCredentials):
				code, msg = codes.Unauthenticated, "credentials required (authorization: Bearer <token>)"
			case errors.Is(err, daemon.ErrBadCredentials):
				code, msg = codes.PermissionDenied, "credentials not valid"
			}
			svc.metrics.Refused.WithLabelValues(code.String()).Inc()
			return "", status.Error(code, msg)
		}
	}
	if v := md.Get(SelectorHeader); len(v) > 0 && strings.TrimSpace(v[0]) != "" {
		return strings.TrimSpace(v[0]), nil
	}
	return strings.TrimSpace(fromRequest), nil
}

// checkSelector accepts an empty selector, the flag set id, or flagSetId=<id>: the
// daemon serves one flag set, and a client asking for another must not silently get
// this one.
func (svc *Service) checkSelector(p *payload, selector string) error {
	if selector == "" {
		return nil
	}
	want := selector
	if k, v, ok := strings.Cut(selector, "="); ok && strings.TrimSpace(k) == "flagSetId" {
		want = strings.TrimSpace(v)
	}
	if want == p.flagSetID {
		return nil
	}
	svc.metrics.Refused.WithLabelValues(codes.NotFound.String()).Inc()
	svc.log.Warn("flagd sync: a client asked for a flag set this daemon does not serve", "selector", selector, "flagSetId", p.flagSetID)
	return status.Errorf(codes.NotFound, "selector %q: this daemon serves flag set %q only (selector: %q or flagSetId=%s)", selector, p.flagSetID, p.flagSetID, p.flagSetID)
}
