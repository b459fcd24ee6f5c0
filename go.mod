module github.com/steno-go/steno

go 1.26.0

require (
	github.com/sethvargo/go-retry v0.5.0
	go.uber.org/goleak v1.3.0
)
