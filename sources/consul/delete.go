package consul

import (
	"context"
	"fmt"

	"github.com/hashicorp/consul/api"

	"github.com/flagsync/flagsync/sources"
)

// Delete removes the key a flag came from (lifecycle deleteFromSource) and returns
// its previous value for the audit log. origin is where the flag was read (key and
// ModifyIndex): the key must be this source's key for flagKey, and it
// is deleted only if its ModifyIndex is still the one the snapshot was built from
// (check-and-set), so a value written since is never deleted by mistake.
func (s *Source) Delete(ctx context.Context, flagKey string, origin sources.Origin) ([]byte, error) {
	key, index, err := s.originKey(flagKey, origin)
	if err != nil {
		return nil, err
	}
	pair, err := s.getPair(ctx, key)
	if err != nil {
		return nil, err
	}
	if pair.ModifyIndex != index {
		return nil, fmt.Errorf("consul %s: changed since the snapshot (ModifyIndex %d, snapshot had %d): not deleted", key, pair.ModifyIndex, index)
	}
	ok, _, err := s.kv.DeleteCAS(&api.KVPair{Key: key, ModifyIndex: index}, (&api.WriteOptions{}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("consul %s: delete: %w", key, err)
	}
	if !ok {
		return nil, fmt.Errorf("consul %s: changed while deleting (check-and-set on ModifyIndex %d failed): not deleted", key, index)
	}
	return pair.Value, nil
}

// Get returns the current value of the key a flag came from (dry runs log it).
func (s *Source) Get(ctx context.Context, flagKey string, origin sources.Origin) ([]byte, error) {
	key, _, err := s.originKey(flagKey, origin)
	if err != nil {
		return nil, err
	}
	pair, err := s.getPair(ctx, key)
	if err != nil {
		return nil, err
	}
	return pair.Value, nil
}

func (s *Source) getPair(ctx context.Context, key string) (*api.KVPair, error) {
	// Read from the leader: the check before a delete must not see a stale value.
	pair, _, err := s.kv.Get(key, (&api.QueryOptions{RequireConsistent: true}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("consul %s: %w", key, err)
	}
	if pair == nil {
		return nil, fmt.Errorf("consul %s: no longer exists", key)
	}
	return pair, nil
}

// originKey checks that origin names this source's key for flagKey and returns the
// key and the ModifyIndex it was read at.
func (s *Source) originKey(flagKey string, o sources.Origin) (string, uint64, error) {
	if o.Scheme != "consul" {
		return "", 0, fmt.Errorf("%w: %s is not a consul origin", sources.ErrNotDeletable, o)
	}
	if key, err := sources.RelativeKey(s.cfg.Prefix, o.Location); err != nil || key != flagKey {
		return "", 0, fmt.Errorf("%w: %s is not the key of flag %s under %s", sources.ErrNotDeletable, o, flagKey, s.cfg.Prefix)
	}
	if o.Version == 0 {
		return "", 0, fmt.Errorf("%w: %s has no ModifyIndex to check against", sources.ErrNotDeletable, o)
	}
	return o.Location, o.Version, nil
}

var (
	_ sources.Deleter = (*Source)(nil)
	_ sources.Getter  = (*Source)(nil)
)
