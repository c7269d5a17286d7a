package echoconfig_test

import (
	"log"

	"github.com/labstack/echo/v4"

	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/config/echoconfig"
	"github.com/sluicehq/sluice/store/memstore"
)

func ExampleMount() {
	hello := func(c echo.Context) error { return c.String(200, "hello") }
	st, err := memstore.New()
	if err != nil {
		log.Fatal(err)
	}
	f, err := config.Parse("sluice.yaml", []byte("policies: {api: {rate: 5/10s}}\nroutes: [{route: GET /api/hello, limit: api}]\n"))
	if err != nil {
		log.Fatal(err)
	}
	routes, err := f.Build(st)
	if err != nil {
		log.Fatal(err)
	}
	// snippet:begin config-echo
	e := echo.New()
	echoconfig.Mount(e, routes) // before or after the routes
	e.GET("/api/hello", hello)  // limited by the file's "GET /api/hello"
	// snippet:end
	_ = e
	// Output:
}
