package ginconfig_test

import (
	"log"

	"github.com/gin-gonic/gin"

	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/config/ginconfig"
	"github.com/sluicehq/sluice/store/memstore"
)

func ExampleMount() {
	hello := func(c *gin.Context) { c.String(200, "hello") }
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
	// snippet:begin config-gin
	r := gin.New()
	if err := ginconfig.Mount(r, routes); err != nil { // before the routes
		log.Fatal(err)
	}
	r.GET("/api/hello", hello) // limited by the file's "GET /api/hello"
	// snippet:end
	_ = r
	// Output:
}
