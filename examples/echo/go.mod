module github.com/sluicehq/sluice/examples/echo

go 1.24

require (
	github.com/labstack/echo/v4 v4.13.3
	github.com/redis/go-redis/v9 v9.17.3
	github.com/sluicehq/sluice v0.0.0-00010101000000-000000000000
	github.com/sluicehq/sluice/adapters/echomw v0.0.0-00010101000000-000000000000
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/dgryski/go-rendezvous v0.0.0-20200823014737-9f7001d12a5f // indirect
	github.com/labstack/gommon v0.4.2 // indirect
	github.com/mattn/go-colorable v0.1.13 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	github.com/valyala/bytebufferpool v1.0.0 // indirect
	github.com/valyala/fasttemplate v1.2.2 // indirect
	golang.org/x/crypto v0.31.0 // indirect
	golang.org/x/net v0.33.0 // indirect
	golang.org/x/sys v0.28.0 // indirect
	golang.org/x/text v0.21.0 // indirect
)

// The replace serves this repository only (go.work, GOWORK=off builds); a
// module that requires this one ignores it. Before tagging a release of this
// module, require a tagged root module version above.
replace (
	github.com/sluicehq/sluice => ../..
	github.com/sluicehq/sluice/adapters/echomw => ../../adapters/echomw
)
