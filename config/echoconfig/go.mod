module github.com/sluicehq/sluice/config/echoconfig

go 1.24

require (
	github.com/labstack/echo/v4 v4.13.3
	github.com/sluicehq/sluice v0.0.0-00010101000000-000000000000
	github.com/sluicehq/sluice/adapters/echomw v0.0.0-00010101000000-000000000000
	github.com/sluicehq/sluice/config v0.0.0-00010101000000-000000000000
	github.com/stretchr/testify v1.10.0
)

require (
	github.com/davecgh/go-spew v1.1.1 // indirect
	github.com/labstack/gommon v0.4.2 // indirect
	github.com/mattn/go-colorable v0.1.13 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	github.com/pmezard/go-difflib v1.0.0 // indirect
	github.com/valyala/bytebufferpool v1.0.0 // indirect
	github.com/valyala/fasttemplate v1.2.2 // indirect
	go.yaml.in/yaml/v3 v3.0.2 // indirect
	golang.org/x/crypto v0.31.0 // indirect
	golang.org/x/net v0.33.0 // indirect
	golang.org/x/sys v0.28.0 // indirect
	golang.org/x/text v0.21.0 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)

// The replaces serve this repository only (go.work, GOWORK=off builds); a
// module that requires this one ignores them. Before tagging a release of
// this module, require tagged versions above.
replace (
	github.com/sluicehq/sluice => ../..
	github.com/sluicehq/sluice/adapters/echomw => ../../adapters/echomw
	github.com/sluicehq/sluice/config => ..
)
