module github.com/flagsync/flagsync/provider

go 1.26.0

require (
	github.com/flagsync/flagsync/flagset v0.0.0-00010101000000-000000000000
	github.com/flagsync/flagsync/internal/testsvc v0.0.0-00010101000000-000000000000
	github.com/flagsync/flagsync/transport v0.0.0-00010101000000-000000000000
	github.com/fsnotify/fsnotify v1.10.1
	github.com/open-feature/go-sdk v1.20.0
	github.com/redis/go-redis/v9 v9.23.0
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	go.uber.org/mock v0.6.0 // indirect
	go.yaml.in/yaml/v3 v3.0.6 // indirect
	golang.org/x/sys v0.48.0 // indirect
)

replace (
	github.com/flagsync/flagsync/flagset => ../flagset
	github.com/flagsync/flagsync/internal/testsvc => ../internal/testsvc
	github.com/flagsync/flagsync/transport => ../transport
)
