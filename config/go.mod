module github.com/sluicehq/sluice/config

go 1.24

require github.com/sluicehq/sluice v0.0.0-00010101000000-000000000000

require go.yaml.in/yaml/v3 v3.0.2

// The replace serves this repository only (go.work, GOWORK=off builds); a
// module that requires this one ignores it. Before tagging a release of this
// module, require a tagged root module version above.
replace github.com/sluicehq/sluice => ../
