package consul

import (
	"context"

	"fmt"
	"strconv"

	"github.com/hashicorp/consul/api"

	"github.com/flagsync/flagsync/lifecycle"
	"github.com/flagsync/flagsync/sources"
)

// Delete removes the key a flag came from (lifecycle deleteFromSource) and returns
// its previous value for the audit log. origin is the flag's metadata.source,
// "consul:<key>@<ModifyIndex>": the key must be this source's key for flagKey, and it
// is deleted only if its ModifyIndex is still the one the snapshot was built from
// (check-and-set), so a value written since is never deleted by mistake.
func (s *Source) Delete(ctx context.Context, flagKey, origin string) ([]byte, error) {
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
func (s *Source) Get(ctx context.Context, flagKey, origin string) ([]byte, error) {
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
func (s *Source) originKey(flagKey, origin string) (string, uint64, error) {
	o, err := lifecycle.ParseOrigin(origin)
	if err != nil {
		return "", 0, err
	}
	if o.Scheme != "consul" {
		return "", 0, fmt.Errorf("%w: %q is not a consul origin", lifecycle.ErrNotDeletable, origin)
	}
	if key, err := sources.RelativeKey(s.cfg.Prefix, o.Location); err != nil || key != flagKey {
		return "", 0, fmt.Errorf("%w: %q is not the key of flag %s under %s", lifecycle.ErrNotDeletable, origin, flagKey, s.cfg.Prefix)
	}
	index, err := strconv.ParseUint(o.Version, 10, 64)
	if err != nil || index == 0 {
		return "", 0, fmt.Errorf("%w: %q has no ModifyIndex to check against", lifecycle.ErrNotDeletable, origin)
	}
	return o.Location, index, nil
}

var (
	_ lifecycle.Deleter = (*Source)(nil)
	_ lifecycle.Getter  = (*Source)(nil)
)
