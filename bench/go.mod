module github.com/wszero/wszero/bench

go 1.25

replace github.com/wszero/wszero => ../

require (
	github.com/gorilla/websocket v1.5.3
	github.com/olahol/melody v1.1.4
	github.com/wszero/wszero v0.0.0-00010101000000-000000000000
	golang.org/x/sys v0.38.0
)

require (
	github.com/evanw/esbuild v0.28.2 // indirect
	golang.org/x/time v0.10.0 // indirect
)
