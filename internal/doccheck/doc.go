// Package doccheck holds the test that keeps the Go code shown in sluice's
// Markdown documentation (README.md, docs/*.md and every other .md file of
// the repository) equal to code that the test command compiles.
//
// Every ```go block of a Markdown file is preceded by an HTML comment, which
// GitHub and pkg.go.dev do not show, naming where its text comes from. Either
// a region of a Go file:
//
//	<!-- snippet: locks-guard-setup -->
//	```go
//	...
//	```
//
// where a region is the lines between two line comments in any .go file of
// the repository (of any module), usually a _test.go file of the package the
// snippet documents, so that go vet and go test of that module compile it
// and, in an Example with an Output comment, run it:
//
//	// snippet:begin locks-guard-setup
//	locker, err := lockguard.New(st)
//	...
//	// snippet:end
//
// The block holds the region's lines with their common indentation removed
// (lines that continue a raw string literal are kept as they are), without
// leading or trailing blank lines. Or the declarations of exported names of
// one package directory, for a block that shows an API's signatures:
//
//	<!-- decl: rediscmd Reserve Restock -->
//
// The block then holds each named function's signature or type's declaration
// as gofmt prints it, without comments or bodies, one a line, with a blank
// line around a declaration of several lines.
//
// The test fails for a ```go block without such a comment, a name that no
// region or declaration has, a block that differs from its source (it prints
// a diff, with file and line of both), a region defined twice or used by no
// block, and a malformed marker. It reads text only: compiling the regions is
// the business of the tests of the modules they live in, which `make test`
// runs. To rewrite the blocks from their sources after changing the code:
//
//	go test ./internal/doccheck -update
package doccheck
