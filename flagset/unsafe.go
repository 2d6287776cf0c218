package flagset

import "unsafe"

// unsafeBytes views s as bytes without copying; the bytes must not be modified.
func unsafeBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// mapIdentity identifies a map value (maps are references): equal for the same map.
func mapIdentity(m map[string]any) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(&m))
}
