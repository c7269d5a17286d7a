package config_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/store/memstore"
)

// The limits of two routes, declared in a file and mounted in front of a
// ServeMux.
func Example() {
	hello := func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "hello") }
	pay := func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "paid", r.PathValue("id")) }
	data := []byte(`
policies:
  api: {rate: 2/10s}
guards:
  order: {key: {param: id}, ttl: 5s}
routes:
  - {route: GET /api/hello, limit: api}
  - {route: "POST /orders/{id}/pay", guard: order}
`)
	// snippet:begin readme-config
	st, err := memstore.New() // or redisstore.New(redisClient)
	if err != nil {
		log.Fatal(err)
	}
	f, err := config.Parse("sluice.yaml", data) // or config.Load("sluice.yaml")
	if err != nil {
		log.Fatal(err) // every mistake, with its line
	}
	routes, err := f.Build(st)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/hello", hello)
	mux.HandleFunc("POST /orders/{id}/pay", pay)
	handler := routes.Handler(mux) // serve this: the file's limits, then mux
	// snippet:end

	for range 3 {
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, httptest.NewRequest("GET", "/api/hello", nil))
		fmt.Println(w.Code, w.Header().Get("RateLimit"))
	}
	// Output:
	// 200 "api";r=1;t=10
	// 200 "api";r=0;t=10
	// 429 "api";r=0;t=10
}

// Parse reports every mistake with its line.
func ExampleParse() {
	_, err := config.Parse("sluice.yaml", []byte(`
policies:
  api: {rate: 5 per second}
  login: {rate: 3/1m, count: failed}
routes:
  - {route: GET /api/hello, limit: apl}
`))
	fmt.Println(err)
	// Output:
	// sluice.yaml:3: policy "api": rate "5 per second": want <limit>/<window>, such as 5/10s or 1000/24h
	// sluice.yaml:4: policy "login": count "failed": want all, failures or successes
	// sluice.yaml:6: route "GET /api/hello": no policy "apl" (declared: api, login)
}

func ExampleParseRate() {
	limit, window, _ := config.ParseRate("1000/24h")
	fmt.Println(limit, window)
	limit, window, _ = config.ParseRate("60/m")
	fmt.Println(limit, window)
	// Output:
	// 1000 24h0m0s
	// 60 1m0s
}
