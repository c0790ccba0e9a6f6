module github.com/wszero/wszero/natsbroker

go 1.26.0

require (
	github.com/nats-io/nats.go v1.55.0
	github.com/wszero/wszero v0.0.0
)

require (
	github.com/evanw/esbuild v0.28.2 // indirect
	github.com/gorilla/websocket v1.5.3 // indirect
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/nats-io/nkeys v0.4.16 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/time v0.16.0 // indirect
)

replace github.com/wszero/wszero => ../
