module github.com/steno-go/steno/examples/openai-sdk

go 1.26.0

require (
	github.com/openai/openai-go/v3 v3.98.0
	github.com/steno-go/steno v0.0.0
)

require (
	github.com/coder/websocket v1.8.15 // indirect
	github.com/hajimehoshi/go-mp3 v0.3.4 // indirect
	github.com/tidwall/gjson v1.20.0 // indirect
	github.com/tidwall/match v1.1.1 // indirect
	github.com/tidwall/pretty v1.2.1 // indirect
	github.com/tidwall/sjson v1.2.5 // indirect
	golang.org/x/sync v0.25.0 // indirect
	golang.org/x/time v0.16.0 // indirect
)

replace github.com/steno-go/steno => ../..
