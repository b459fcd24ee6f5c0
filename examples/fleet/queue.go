package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/steno-go/steno/transcribe"
)

// A queue is a Redis stream of jobs read by one consumer group, and the
// keys beside it. All keys of a queue named Q share the hash tag {Q}, so
// that they live on one node of a Redis Cluster and the scripts below can
// touch them together:
//
//	{Q}:jobs         the stream of jobs, one entry per file: fields id, path
//	{Q}:failed       jobs given up on, with the reason (capped at failedCap)
//	{Q}:file:<hash>  the lease on one file: the entry working on it
//	{Q}:halt         set when a worker met an error that must stop the
//	                 fleet (an exhausted quota, a refused key); its reason
//
// An entry stays in the stream until it is done: acknowledging a job also
// deletes it, so that the stream's length is the work left (waiting and
// in progress).
type queue struct {
	rdb    redis.UniversalClient
	name   string
	jobs   string
	failed string
	halt   string
	group  string
}

// group is the consumer group every worker reads with.
const group = "workers"

// failedCap bounds the stream of failed jobs (approximately: Redis trims
// by whole nodes).
const failedCap = 10000

// defaultQueue is the queue's name when -queue is not given.
const defaultQueue = "steno:fleet"

func newQueue(rdb redis.UniversalClient, name string) *queue {
	tag := "{" + name + "}"
	return &queue{rdb: rdb, name: name, jobs: tag + ":jobs", failed: tag + ":failed", halt: tag + ":halt", group: group}
}

// job is what an entry of the stream asks for.
type job struct {
	// ID places the transcript under the output directory, as the batch
	// CLI names it: the path under the folder given to produce, the
	// folder's own name first ("recordings/sub/a.wav").
	ID string
	// Path is the audio file's absolute path, on the file system the
	// workers share.
	Path string
}

// delivery is one job as a worker received it.
type delivery struct {
	MsgID   string // the stream entry's ID
	Job     job
	Claimed bool   // taken over from another consumer, not read new
	Bad     string // why the entry is not a job; "" when it is one
}

func deliveryOf(m redis.XMessage, claimed bool) delivery {
	d := delivery{MsgID: m.ID, Claimed: claimed}
	id, _ := m.Values["id"].(string)
	path, _ := m.Values["path"].(string)
	d.Job = job{ID: id, Path: path}
	if id == "" || path == "" || !filepath.IsAbs(path) {
		d.Bad = "the entry is not a job (want fields id and path, an absolute path)"
	}
	return d
}

// ensureGroup creates the stream and its consumer group, if missing. The
// group starts at the stream's beginning, so that jobs added before any
// worker ran are delivered.
func (q *queue) ensureGroup(ctx context.Context) error {
	err := q.rdb.XGroupCreateMkStream(ctx, q.jobs, q.group, "0").Err()
	if err != nil && strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return nil
	}
	return err
}

// add enqueues jobs in one round trip.
func (q *queue) add(ctx context.Context, jobs []job) error {
	_, err := q.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, j := range jobs {
			p.XAdd(ctx, &redis.XAddArgs{Stream: q.jobs, Values: []any{"id", j.ID, "path", j.Path}})
		}
		return nil
	})
	return err
}

// read returns a job no consumer has received yet, waiting up to block
// for one; nil when none came.
func (q *queue) read(ctx context.Context, consumer string, block time.Duration) (*delivery, error) {
	res, err := q.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: q.group, Consumer: consumer, Streams: []string{q.jobs, ">"}, Count: 1, Block: block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	for _, s := range res {
		for _, m := range s.Messages {
			d := deliveryOf(m, false)
			return &d, nil
		}
	}
	return nil, nil
}

// claim takes over one job that its consumer has not touched for
// minIdle (a worker that died, or gave the job back), scanning the pending
// entries from cursor; it returns the job, if any, and where the next scan
// starts ("0-0" once the whole list was scanned).
func (q *queue) claim(ctx context.Context, consumer string, minIdle time.Duration, cursor string) (*delivery, string, error) {
	msgs, next, err := q.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream: q.jobs, Group: q.group, Consumer: consumer, MinIdle: minIdle, Start: cursor, Count: 1,
	}).Result()
	if err != nil {
		return nil, cursor, err
	}
	for _, m := range msgs {
		d := deliveryOf(m, true)
		return &d, next, nil
	}
	return nil, next, nil
}

// deliveries returns how many times the entry msgID was delivered, this
// time included; 0 when it is no longer pending.
func (q *queue) deliveries(ctx context.Context, msgID string) (int64, error) {
	p, err := q.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: q.jobs, Group: q.group, Start: msgID, End: msgID, Count: 1}).Result()
	if err != nil || len(p) == 0 {
		return 0, err
	}
	return p[0].RetryCount, nil
}

// leaseKey is the key of the lease on the file at path.
func (q *queue) leaseKey(path string) string {
	sum := sha256.Sum256([]byte(path))
	return "{" + q.name + "}:file:" + hex.EncodeToString(sum[:16])
}

// takeLease gives the entry msgID the lease on its file for ttl, unless
// another entry holds it: two entries for one file (a folder enqueued
// twice) are then never worked on at once. It returns the holder's entry
// ID when another holds it.
func (q *queue) takeLease(ctx context.Context, d delivery, ttl time.Duration) (holder string, err error) {
	v, err := takeLeaseScript.Run(ctx, q.rdb, []string{q.leaseKey(d.Job.Path)}, d.MsgID, ttl.Milliseconds()).Result()
	if err != nil {
		return "", err
	}
	if s, ok := v.(string); ok {
		return s, nil
	}
	return "", nil
}

var takeLeaseScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] then return v end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

// dropLease ends the entry's lease on its file, if it still holds it.
func (q *queue) dropLease(ctx context.Context, d delivery) error {
	return dropLeaseScript.Run(ctx, q.rdb, []string{q.leaseKey(d.Job.Path)}, d.MsgID).Err()
}

var dropLeaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`)

// heartbeat tells the queue that consumer is still working on d: the
// entry's idle time starts again (so no other worker claims it) and the
// file's lease is extended by ttl. It reports false when the job is no
// longer consumer's: another worker claimed it (this one was silent for
// too long) or it was finished elsewhere.
func (q *queue) heartbeat(ctx context.Context, consumer string, d delivery, ttl time.Duration) (bool, error) {
	n, err := heartbeatScript.Run(ctx, q.rdb, []string{q.jobs, q.leaseKey(d.Job.Path)},
		q.group, consumer, d.MsgID, ttl.Milliseconds(), 0).Int()
	return n == 1, err
}

// giveBack hands d back at once: its entry becomes claimable by any worker
// now, instead of after the visibility timeout, and the file's lease ends.
// It does nothing if the job is no longer consumer's.
func (q *queue) giveBack(ctx context.Context, consumer string, d delivery, visibility time.Duration) error {
	return heartbeatScript.Run(ctx, q.rdb, []string{q.jobs, q.leaseKey(d.Job.Path)},
		q.group, consumer, d.MsgID, 0, visibility.Milliseconds()).Err()
}

// heartbeatScript: if the entry ARGV[3] is pending with consumer ARGV[2],
// set its idle time to ARGV[5] ms (XCLAIM … JUSTID does not count a
// delivery) and, when ARGV[4] > 0, extend the lease KEYS[2] by ARGV[4] ms
// (taking it again if it expired meanwhile), else drop it. Returns 1 if the
// entry was the consumer's and no other entry holds the lease.
var heartbeatScript = redis.NewScript(`
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 or p[1][2] ~= ARGV[2] then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'IDLE', ARGV[5], 'JUSTID')
local v = redis.call('GET', KEYS[2])
if v and v ~= ARGV[3] then return 0 end
if tonumber(ARGV[4]) > 0 then
  redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
elseif v then
  redis.call('DEL', KEYS[2])
end
return 1
`)

// ack marks d done: its entry leaves the pending list and the stream.
func (q *queue) ack(ctx context.Context, d delivery) error {
	_, err := q.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAck(ctx, q.jobs, q.group, d.MsgID)
		p.XDel(ctx, q.jobs, d.MsgID)
		return nil
	})
	return err
}

// fail gives d up for good (bad input, too many deliveries): it is written
// to the failed stream with the reason, and acknowledged.
func (q *queue) fail(ctx context.Context, consumer string, d delivery, reason string) error {
	_, err := q.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAdd(ctx, &redis.XAddArgs{Stream: q.failed, MaxLen: failedCap, Approx: true, Values: []any{
			"id", d.Job.ID, "path", d.Job.Path, "entry", d.MsgID, "worker", consumer, "error", reason,
			"at", time.Now().UTC().Format(time.RFC3339),
		}})
		p.XAck(ctx, q.jobs, q.group, d.MsgID)
		p.XDel(ctx, q.jobs, d.MsgID)
		return nil
	})
	return err
}

// left returns how many jobs are not done: waiting or in progress.
func (q *queue) left(ctx context.Context) (int64, error) {
	return q.rdb.XLen(ctx, q.jobs).Result()
}

// setHalt stops the fleet: every worker stops taking jobs when it sees the
// reason. The first reason set stays.
func (q *queue) setHalt(ctx context.Context, reason string) error {
	return q.rdb.SetNX(ctx, q.halt, reason, 0).Err()
}

// halted returns why the fleet was stopped; "" when it was not.
func (q *queue) halted(ctx context.Context) (string, error) {
	s, err := q.rdb.Get(ctx, q.halt).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	return s, err
}

// resume lets the fleet take jobs again after a halt.
func (q *queue) resume(ctx context.Context) error {
	return q.rdb.Del(ctx, q.halt).Err()
}

// leave removes consumer from the group, if it holds no job.
func (q *queue) leave(ctx context.Context, consumer string) error {
	p, err := q.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: q.jobs, Group: q.group, Start: "-", End: "+", Count: 1, Consumer: consumer}).Result()
	if err != nil || len(p) > 0 {
		return err
	}
	return q.rdb.XGroupDelConsumer(ctx, q.jobs, q.group, consumer).Err()
}

// status is what `fleet status` shows.
type status struct {
	FailedKey             string // the stream of failed jobs
	Left, Pending, Failed int64
	Halted                string
	Consumers             []redis.XInfoConsumer
}

func (q *queue) status(ctx context.Context) (status, error) {
	s := status{FailedKey: q.failed}
	var err error
	if s.Left, err = q.left(ctx); err != nil {
		return s, err
	}
	groups, err := q.rdb.XInfoGroups(ctx, q.jobs).Result()
	if err != nil && !isNoSuchKey(err) {
		return s, err
	}
	for _, g := range groups {
		if g.Name == q.group {
			s.Pending = g.Pending
			if s.Consumers, err = q.rdb.XInfoConsumers(ctx, q.jobs, q.group).Result(); err != nil {
				return s, err
			}
		}
	}
	if s.Failed, err = q.rdb.XLen(ctx, q.failed).Result(); err != nil {
		return s, err
	}
	s.Halted, err = q.halted(ctx)
	return s, err
}

// isNoSuchKey reports whether err is Redis's answer for a stream that does
// not exist yet.
func isNoSuchKey(err error) bool {
	return err != nil && strings.Contains(err.Error(), "no such key")
}

// String shows s as `fleet status` prints it.
func (s status) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "jobs left: %d (%d never taken, %d taken and not finished)\n", s.Left, s.Left-s.Pending, s.Pending)
	fmt.Fprintf(&b, "failed: %d", s.Failed)
	if s.Failed > 0 {
		fmt.Fprintf(&b, " (listed, with why, in the stream %s; to try them again, enqueue their folder again: files already transcribed cost nothing)", transcribe.PrintableLine(s.FailedKey))
	}
	b.WriteString("\n")
	if s.Halted != "" {
		fmt.Fprintf(&b, "HALTED: %s\n  (fix the cause, then run 'fleet resume')\n", transcribe.PrintableLine(s.Halted))
	}
	for _, c := range s.Consumers {
		fmt.Fprintf(&b, "worker %s: holds %d jobs, last seen %s ago\n", transcribe.PrintableLine(c.Name), c.Pending, c.Idle.Round(time.Millisecond))
	}
	return b.String()
}
