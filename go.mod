module github.com/steno-go/steno

go 1.26.0

require (
	github.com/sethvargo/go-retry v0.5.0
	go.uber.org/goleak v1.3.0
	golang.org/x/sync v0.25.0
	golang.org/x/time v0.16.0
)
