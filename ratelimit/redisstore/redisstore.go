// Package redisstore keeps a ratelimit.Store in Redis, so that every
// process spending one account's budget (web containers, batch workers)
// shares one limiter state: what the server said remains, what is in
// flight across the fleet, the learned shapes of the budgets, and the
// pause after a 429.
//
//	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
//	lim, err := ratelimit.New(ratelimit.Config{
//		Store:    redisstore.New(rdb, redisstore.Account(apiKey)),
//		Requests: ratelimit.Limit{N: 50, Per: time.Minute},
//	})
//
// The state is one small JSON value under one key per account, changed
// with Redis's optimistic transactions (WATCH, MULTI, EXEC): each change is
// made on the state as read, and made again if another process changed it
// in between. The state expires when no process has used it for TTL.
//
// Redis failures are the limiter's to handle (see ratelimit.Config:
// StoreTimeout, FallbackShare, FailClosed): every call here honours its
// context's deadline.
package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultTTL is how long the state of an account that no process uses
// stays in Redis, when Options.TTL is 0.
const DefaultTTL = 24 * time.Hour

// DefaultPrefix begins the key of every account's state, when
// Options.Prefix is empty.
const DefaultPrefix = "steno:ratelimit:"

// Options tunes a Store.
type Options struct {
	// Prefix begins the key of the account's state: DefaultPrefix when
	// empty.
	Prefix string
	// TTL is how long the state stays after its last change: DefaultTTL
	// when 0.
	TTL time.Duration
}

// Store is a ratelimit.Store in Redis for one account. It is safe for
// concurrent use.
type Store struct {
	rdb redis.UniversalClient
	key string
	ttl time.Duration
}

// New returns the Store of account's state in rdb. Every process that
// passes the same account (see Account) shares one budget. rdb stays the
// caller's to close. Create rdb with ContextTimeoutEnabled (Dial does), or
// a dead Redis holds a limiter for rdb's own dial and read timeouts instead
// of Config.StoreTimeout.
func New(rdb redis.UniversalClient, account string) *Store {
	return NewWithOptions(rdb, account, Options{})
}

// NewWithOptions is New with options.
func NewWithOptions(rdb redis.UniversalClient, account string, o Options) *Store {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	return &Store{rdb: rdb, key: o.Prefix + account, ttl: o.TTL}
}

// Dial returns a client for the Redis server at url
// ("redis://[:password@]host:port/db", or rediss:// for TLS) that honours
// its callers' deadlines, as a Store needs.
func Dial(url string) (*redis.Client, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		// Not err: it quotes the URL, and the URL may hold a password.
		return nil, errors.New("redisstore: not a Redis URL (want redis://[:PASSWORD@]HOST:PORT/DB or rediss://…)")
	}
	opt.ContextTimeoutEnabled = true
	return redis.NewClient(opt), nil
}

// Account returns the name of the account an API key spends, for New: a
// fingerprint of the key (a SHA-256 hash, in hex) that tells accounts apart
// without revealing the key, which is never stored or sent to Redis. Where
// one key may serve several providers, pass the provider's base URL too:
// Account(baseURL, apiKey).
func Account(parts ...string) string {
	h := sha256.New()
	h.Write([]byte("steno ratelimit account"))
	for _, p := range parts {
		fmt.Fprintf(h, "\x00%d:%s", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Key returns the Redis key of the account's state.
func (s *Store) Key() string { return s.key }

// Update reads the state, calls f with it (nil when there is none) and
// saves what f returns, unless another process saved in between: then it
// reads and calls f again, until it saves or ctx is done. When f returns
// nil bytes, nothing is saved.
func (s *Store) Update(ctx context.Context, f func([]byte) ([]byte, error)) error {
	for {
		err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			b, err := tx.Get(ctx, s.key).Bytes()
			switch {
			case errors.Is(err, redis.Nil):
				b = nil
			case err != nil:
				return err
			}
			nb, err := f(b)
			if err != nil || nb == nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, s.key, nb, s.ttl)
				return nil
			})
			return err
		}, s.key)
		if !errors.Is(err, redis.TxFailedErr) {
			return err
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("redisstore: the state kept changing: %w", err)
		}
	}
}
