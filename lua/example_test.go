package lua_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/lua"
)

// exampleClient starts an in-process Redis for the examples; a real
// application passes its *redis.Client or *redis.ClusterClient.
func exampleClient() (*redis.Client, func()) {
	mr, err := miniredis.Run()
	if err != nil {
		panic(err)
	}
	client := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	return client, func() { _ = client.Close(); mr.Close() }
}

func ExampleRegistry_Define() {
	client, done := exampleClient()
	defer done()
	ctx := context.Background()

	// Define commands once, at start-up, with their key counts.
	reg := lua.NewRegistry()
	getdel, err := reg.Define("myapp_getdel", 1, `
-- KEYS[1] the key; reply: its value (nil if missing), which is deleted
local v = redis.call('GET', KEYS[1])
redis.call('DEL', KEYS[1])
return v`)
	if err != nil {
		fmt.Println(err)
		return
	}
	// SCRIPT LOAD every command (on every master of a Cluster).
	if err := reg.Preload(ctx, client); err != nil {
		fmt.Println(err)
		return
	}

	client.Set(ctx, "token", "abc", 0)
	v, err := getdel.Run(ctx, client, []string{"token"}).Text()
	fmt.Println(v, err)
	_, err = getdel.Run(ctx, client, []string{"token"}).Text()
	fmt.Println(errors.Is(err, redis.Nil))

	// A restart or SCRIPT FLUSH empties the cache; Run reloads with EVAL.
	client.ScriptFlush(ctx)
	client.Set(ctx, "token", "def", 0)
	v, err = getdel.Run(ctx, client, []string{"token"}).Text()
	fmt.Println(v, err)

	// The wrong number of keys never reaches Redis.
	err = getdel.Run(ctx, client, nil).Err()
	fmt.Println(errors.Is(err, lua.ErrKeyCount))

	c, _ := reg.Lookup("myapp_getdel")
	fmt.Println(c.Name(), c.SHA() == getdel.SHA(), len(reg.Commands()))
	// Output:
	// abc <nil>
	// true
	// def <nil>
	// true
	// myapp_getdel true 1
}
