package redisstore_test

import (
	"log"
	"net/http"
	"os"
	"time"

	"github.com/steno-go/steno/ratelimit"
	"github.com/steno-go/steno/ratelimit/redisstore"
)

// Every process that runs this shares one budget of 50 requests a minute
// for the account of OPENAI_API_KEY, and pauses when any of them is told
// to.
func Example() {
	rdb, err := redisstore.Dial("redis://localhost:6379/0")
	if err != nil {
		log.Fatal(err)
	}
	defer rdb.Close()
	lim, err := ratelimit.New(ratelimit.Config{
		Store:         redisstore.New(rdb, redisstore.Account(os.Getenv("OPENAI_API_KEY"))),
		Requests:      ratelimit.Limit{N: 50, Per: time.Minute},
		FallbackShare: 0.25, // four processes: each spends a quarter while Redis is down
	})
	if err != nil {
		log.Fatal(err)
	}
	client := &http.Client{Transport: lim.Transport(nil)}
	_ = client // send the API's requests through client
}
