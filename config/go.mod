module github.com/sluicehq/sluice/config

go 1.24

require github.com/sluicehq/sluice v0.0.0-00010101000000-000000000000

require (
	github.com/stretchr/testify v1.7.2
	go.yaml.in/yaml/v3 v3.0.2
)

require (
	github.com/alicebob/miniredis/v2 v2.40.0 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/davecgh/go-spew v1.1.1 // indirect
	github.com/dgryski/go-rendezvous v0.0.0-20200823014737-9f7001d12a5f // indirect
	github.com/pmezard/go-difflib v1.0.0 // indirect
	github.com/redis/go-redis/v9 v9.17.3 // indirect
	github.com/yuin/gopher-lua v1.1.1 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)

// The replace serves this repository only (go.work, GOWORK=off builds); a
// module that requires this one ignores it. Before tagging a release of this
// module, require a tagged root module version above.
replace github.com/sluicehq/sluice => ../
