package lua_test

// The lua code of README.md and docs/commands.md: each "snippet:begin NAME"
// region below is shown by a Go block of those files, which
// internal/doccheck keeps equal to it.

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/rediscmd"
)

// snippet:begin commands-lua-import
import "github.com/sluicehq/sluice/lua"

// snippet:end

// README.md, "Custom commands": a command of your own.
func ExampleRegistry_Preload() {
	client, done := exampleClient()
	defer done()
	ctx := context.Background()
	client.Set(ctx, "session:{u1}:token", "t0k3n", 0)

	// snippet:begin readme-lua
	reg := lua.NewRegistry()
	getdel, err := reg.Define("myapp_getdel", 1, `
local v = redis.call('GET', KEYS[1]); redis.call('DEL', KEYS[1]); return v`)
	if err != nil {
		log.Fatal(err)
	}
	if err := reg.Preload(ctx, client); err != nil { // SCRIPT LOAD at start-up, on every master of a Cluster
		log.Fatal(err)
	}
	token, err := getdel.Run(ctx, client, []string{"session:{u1}:token"}).Text()
	fmt.Println(token, err) // err is redis.Nil if there was no token
	for _, c := range reg.Commands() {
		fmt.Println(c.Name(), c.SHA())
	}
	// snippet:end
	// Output:
	// t0k3n <nil>
	// myapp_getdel a2d8972f4321667a1f14009568a9c13c292229a4
}

// docs/commands.md, "Your own commands". Compiled, not run: what it prints
// includes the SHA1 of every catalogue script.
func ExampleRegistry_Add() {
	client, done := exampleClient()
	defer done()
	ctx := context.Background()
	client.Set(ctx, "session:{u1}:token", "t0k3n", 0)

	// snippet:begin commands-lua
	reg := lua.NewRegistry()
	getdel, err := reg.Define("myapp_getdel", 1, `
-- KEYS[1] the key; reply: its value (nil if missing), which is deleted
local v = redis.call('GET', KEYS[1])
redis.call('DEL', KEYS[1])
return v`)
	if err != nil {
		log.Fatal(err)
	}

	// Optionally keep rediscmd's commands in the same registry.
	if err := reg.Add(rediscmd.Commands()...); err != nil {
		log.Fatal(err)
	}

	// At start-up: SCRIPT LOAD every command, on every master of a Cluster
	// (lua.Preload(ctx, client, cmds...) does the same for any list of commands).
	if err := reg.Preload(ctx, client); err != nil {
		log.Fatal(err)
	}

	// Per request: EVALSHA; on NOSCRIPT (restart, failover, SCRIPT FLUSH) Run
	// retries with EVAL, which also caches the script again.
	v, err := getdel.Run(ctx, client, []string{"session:{u1}:token"}).Text()
	switch {
	case errors.Is(err, redis.Nil):
		fmt.Println("no token")
	case err != nil:
		log.Print(err)
	default:
		fmt.Println("token:", v)
	}

	// Listing for operations: name and SHA1, sorted by name.
	for _, c := range reg.Commands() {
		fmt.Println(c.Name(), c.SHA())
	}
	// snippet:end
}
