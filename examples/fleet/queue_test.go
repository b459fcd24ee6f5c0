package main

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The queue's moves, one by one, against a real Redis: two entries of one
// file never hold its lease together; a heartbeat keeps a job from being
// taken over and tells its worker when it was; a job handed back is
// claimable at once; acknowledging and failing remove the entry; a halt
// keeps its first reason.
func TestQueueLeasesHoldsAndHandsBack(t *testing.T) {
	rdb := testRedis(t, testRedisURL(t))
	q := newQueue(rdb, newTestQueue(t, rdb, "unused"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(q.ensureGroup(ctx))
	must(q.ensureGroup(ctx)) // again: the group exists
	must(q.add(ctx, []job{{"rec/a.wav", "/data/rec/a.wav"}, {"rec/a.wav", "/data/rec/a.wav"}, {"rec/b.wav", "/data/rec/b.wav"}}))
	must(rdb.XAdd(ctx, &redis.XAddArgs{Stream: q.jobs, Values: []any{"id", "x.wav"}}).Err())

	read := func(consumer string) delivery {
		t.Helper()
		d, err := q.read(ctx, consumer, 100*time.Millisecond)
		if err != nil || d == nil {
			t.Fatalf("read by %s: %v, %v", consumer, d, err)
		}
		return *d
	}
	d1, d2, d3, bad := read("A"), read("B"), read("C"), read("C")
	if d1.Job != (job{"rec/a.wav", "/data/rec/a.wav"}) || d1.Claimed || d1.Bad != "" {
		t.Errorf("first delivery %+v", d1)
	}
	if bad.Bad == "" {
		t.Errorf("an entry without a path was taken for a job: %+v", bad)
	}
	if d, err := q.read(ctx, "A", 10*time.Millisecond); d != nil || err != nil {
		t.Errorf("a fifth read: %+v, %v; want nothing", d, err)
	}

	// One file, two entries: one lease.
	lease := func(d delivery) string {
		t.Helper()
		h, err := q.takeLease(ctx, d, time.Hour)
		must(err)
		return h
	}
	if h := lease(d1); h != "" {
		t.Errorf("first lease on a.wav: held by %s", h)
	}
	if h := lease(d2); h != d1.MsgID {
		t.Errorf("second entry of a.wav: lease holder %q, want %s", h, d1.MsgID)
	}
	if h := lease(d1); h != "" {
		t.Errorf("the holder taking its lease again: held by %s", h)
	}

	// Heartbeats: only the holder's count, and none is idle long.
	beat := func(consumer string, d delivery) bool {
		t.Helper()
		ok, err := q.heartbeat(ctx, consumer, d, time.Hour)
		must(err)
		return ok
	}
	if !beat("A", d1) {
		t.Error("A's heartbeat on its own job failed")
	}
	if beat("B", d1) {
		t.Error("B's heartbeat on A's job succeeded")
	}
	if d, _, err := q.claim(ctx, "D", time.Hour, "0-0"); d != nil || err != nil {
		t.Errorf("claimed a job idle for less than the visibility timeout: %+v, %v", d, err)
	}

	// Handed back: claimable at once, its lease gone, its worker told.
	must(q.giveBack(ctx, "A", d1, time.Hour))
	c, _, err := q.claim(ctx, "D", time.Hour, "0-0")
	must(err)
	if c == nil || c.MsgID != d1.MsgID || !c.Claimed {
		t.Fatalf("claim after hand-back: %+v, want %s", c, d1.MsgID)
	}
	if n, err := q.deliveries(ctx, c.MsgID); err != nil || n != 2 {
		t.Errorf("deliveries of the claimed job: %d, %v; want 2", n, err)
	}
	if beat("A", d1) {
		t.Error("A's heartbeat succeeded on a job D took over")
	}
	if h := lease(d2); h != "" {
		t.Errorf("lease after the hand-back: held by %s", h)
	}
	if beat("D", *c) {
		t.Error("D's heartbeat succeeded while another entry of the file holds its lease")
	}

	// Done and failed jobs leave the stream; the failure is kept.
	must(q.ack(ctx, d2))
	must(q.dropLease(ctx, d2))
	must(q.fail(ctx, "C", d3, "not audio"))
	must(q.fail(ctx, "C", bad, bad.Bad))
	if n, err := q.left(ctx); err != nil || n != 1 {
		t.Errorf("left: %d, %v; want 1 (the job D holds)", n, err)
	}
	failed, err := rdb.XRange(ctx, q.failed, "-", "+").Result()
	must(err)
	if len(failed) != 2 || failed[0].Values["error"] != "not audio" || failed[0].Values["path"] != "/data/rec/b.wav" {
		t.Errorf("failed list: %+v", failed)
	}

	// A halt keeps its first reason, until resumed.
	must(q.setHalt(ctx, "quota"))
	must(q.setHalt(ctx, "key refused"))
	if r, err := q.halted(ctx); r != "quota" || err != nil {
		t.Errorf("halted: %q, %v; want the first reason", r, err)
	}
	s, err := q.status(ctx)
	must(err)
	if s.Left != 1 || s.Pending != 1 || s.Failed != 2 || s.Halted != "quota" {
		t.Errorf("status: %+v", s)
	}
	must(q.resume(ctx))
	if r, err := q.halted(ctx); r != "" || err != nil {
		t.Errorf("halted after resume: %q, %v", r, err)
	}

	// Workers without jobs leave the group; D, which holds one, stays.
	for _, c := range []string{"A", "B", "C", "D"} {
		must(q.leave(ctx, c))
	}
	cs, err := rdb.XInfoConsumers(ctx, q.jobs, q.group).Result()
	must(err)
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
	}
	if !slices.Equal(names, []string{"D"}) {
		t.Errorf("consumers left: %v, want [D]", names)
	}
}
