package transcribe

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/steno-go/steno/internal/audio"
	"github.com/steno-go/steno/multipart"
)

// SplitOptions sets how the client cuts audio that does not fit in one
// request. Files over the API's size limit are always cut, at silences
// where the audio has them; pieces are byte ranges of the original (WAV and
// MP3: no re-encoding; other formats are re-encoded to FLAC by ffmpeg, see
// Shrink), transcribed in parallel through the client's limiter, and
// stitched back: text joined, timestamps shifted, the overlap of cuts made
// where no silence was found removed, srt and vtt rendered from the
// stitched segments.
//
// A diarized transcript (DiarizedJSON) is cut the same way, and its
// speakers keep one name across the whole file: the pieces are sent in
// order, each with chunking_strategy "auto" (which the diarize model
// needs over 30 s), and each after the first names the speakers heard
// before it (Request.KnownSpeakerNames and KnownSpeakerReferences, up to
// 4: a 2 to 10 s clip of each speaker alone, cut from the original
// audio); once 4 are known the rest go in parallel. A speaker the server
// was not told of gets a name no other speaker of the file has. Pieces
// are made smaller by the room the clips take in a request.
type SplitOptions struct {
	// MaxBytes is the largest piece, in bytes of audio; default
	// DefaultMaxPieceBytes, which leaves room for the request's framing.
	// Files larger than MaxBytes are cut: set it for servers with a lower
	// limit than OpenAI's (LocalAI's is 15 MB).
	MaxBytes int64
	// MaxDuration, when set, also cuts files longer than it, even if they
	// fit: the pieces are transcribed in parallel, so a long file comes
	// back sooner.
	MaxDuration time.Duration
	// ChainPrompts sends each piece with the end of the previous piece's
	// transcript as its prompt (OpenAI's advice for continuity of style and
	// spelling across pieces; the model reads the last 224 tokens). Pieces
	// then run one after the other, so a long file takes longer; by
	// default they run in parallel and each piece keeps Request.Prompt.
	ChainPrompts bool
	// Shrink re-encodes a WAV or MP3 file that must be cut to 16 kHz mono
	// FLAC first, when ffmpeg is on PATH: what Whisper hears anyway (it
	// resamples every input to 16 kHz mono), often small enough to need no
	// cut (a 44.1 kHz stereo WAV of speech shrinks about eightfold). It
	// costs running ffmpeg over the whole file and a temporary file of the
	// result (see WithTempDir). Other formats (FLAC, Ogg, M4A, WebM) are always
	// re-encoded this way to be cut, and need ffmpeg for it.
	Shrink bool
	// AllowPartial accepts the transcript of a cut file some of whose
	// pieces failed after their retries: the others' transcripts are
	// stitched, and Transcription.Missing lists the stretches that
	// failed. Without it such a file fails with a *PartialError, which
	// lists them too. Either way a batch with an Output keeps the pieces
	// that were transcribed, and sends only the missing ones when the
	// file is sent again (a partial transcript is written, and replaced
	// then). A failure that must stop everything (an exhausted quota, a
	// refused key: see Fatal), a batch's abort and a cancelled context
	// are never taken for a partial transcript. A file none of whose
	// pieces was transcribed fails whatever AllowPartial says.
	AllowPartial bool
	// SkipSilence leaves silence out of what is sent: the silence at the
	// start and the end of the audio, and every pause of at least
	// SkipPause, but for a quarter of a second at each side (so that no
	// word is clipped, and a pause still sounds like one). It is silence
	// the API would bill, and in which Whisper may invent text. Every
	// timestamp of the transcript (segments, words, srt and vtt cues) is
	// mapped back to the original audio, exactly; Transcription.
	// SkippedSeconds says how much was left out. The pauses are found as
	// cuts are, against the recording's noise floor, which takes decoding
	// the whole file: WAV and MP3 pieces are then ranges of the original's
	// samples or frames, one after the other; other formats are re-encoded
	// to FLAC without the silence (ffmpeg). A file that needs no cut is
	// still sent in one request; one in which silence cannot be looked
	// for (no ffmpeg for its format) is sent as it is.
	SkipSilence bool
	// SkipPause is the shortest pause SkipSilence leaves out; default
	// DefaultSkipPause. It must be at least a second.
	SkipPause time.Duration
}

// DefaultSkipPause is the default SplitOptions.SkipPause: pauses of 2 s or
// more are left out of what is sent, but for a quarter of a second at
// each side.
const DefaultSkipPause = 2 * time.Second

// DefaultMaxPieceBytes is the default largest piece: 24 MiB of audio, which
// with the multipart framing stays under MaxBodySize.
const DefaultMaxPieceBytes = audio.DefaultMaxPieceBytes

// promptTailChars is how much of the previous piece's text a chained prompt
// carries: about the 224 tokens a model reads, at ~4 characters a token.
const promptTailChars = 900

// WithSplitting sets how files that do not fit in one request are cut.
func WithSplitting(o SplitOptions) Option {
	return func(c *Client) error {
		if o.MaxBytes < 0 || o.MaxDuration < 0 {
			return errors.New("transcribe: negative split size or duration")
		}
		if o.MaxBytes > 0 && o.MaxBytes < audio.MinPieceBytes {
			return fmt.Errorf("transcribe: split pieces of %d bytes are too small", o.MaxBytes)
		}
		if o.SkipPause != 0 && o.SkipPause < time.Second {
			return fmt.Errorf("transcribe: SkipPause %v: want at least 1s", o.SkipPause)
		}
		c.split = o
		return nil
	}
}

// Piece is one of the pieces a file was cut into, so that a caller can
// audit the cuts: where each lies, and how the cut before it was judged.
type Piece struct {
	Start, End float64 // seconds in the original audio
	Bytes      int64
	Silence    bool    // the cut before it fell in a pause (false for the first piece)
	Overlap    float64 // seconds shared with the previous piece, when no pause was found
	// Cut is how the cut before the piece was made: CutNone for the first
	// piece, CutPause in a pause, CutHard at a limit with Overlap.
	Cut CutKind
	// Floor and Speech are the recording's noise floor and speech level,
	// in dBFS, as the planner judged them at the cut before the piece;
	// PauseLevel is the loudest 20 ms of the pause cut in (CutPause only):
	// at most 12 dB above Floor and at least 20 dB below Speech. All are 0
	// where nothing was measured (the first piece; a cut in audio that
	// could not be decoded).
	Floor, Speech, PauseLevel float32
	// Sent is the seconds of audio sent for the piece: End - Start, less
	// the silence SplitOptions.SkipSilence left out.
	Sent float64
}

// CutKind says how the cut before a Piece was made.
type CutKind uint8

// The kinds of cut.
const (
	CutNone  CutKind = iota // the first piece: no cut before it
	CutPause                // in a pause near the recording's noise floor
	CutHard                 // at a limit, where no pause was found; the pieces overlap
)

// String returns "none", "pause" or "hard".
func (k CutKind) String() string {
	switch k {
	case CutNone:
		return "none"
	case CutPause:
		return "pause"
	case CutHard:
		return "hard"
	}
	return fmt.Sprintf("CutKind(%d)", uint8(k))
}

// mustSplit reports whether src, sent with req (its body bodySize bytes),
// must be cut: its body would pass the server's limit (MaxBodySize for
// OpenAI; see Provider), it is larger than SplitOptions.MaxBytes, or longer
// than SplitOptions.MaxDuration or than the duration cap of req's model
// (see models).
func (c *Client) mustSplit(src *source, bodySize int64, req Request, translate bool) bool {
	return c.splitBelow(src, bodySize, c.modelCap(req, translate))
}

// splitBelow reports whether src must be cut for its size, or for being
// longer than SplitOptions.MaxDuration or than capDur (0: none).
func (c *Client) splitBelow(src *source, bodySize int64, capDur time.Duration) bool {
	if c.overLimit(bodySize) || (c.split.MaxBytes > 0 && src.file.Size > c.split.MaxBytes) {
		return true
	}
	limit := minDuration(c.split.MaxDuration, capDur)
	if limit <= 0 {
		return false
	}
	info, err := src.info()
	return err == nil && info.Duration > limit
}

// modelCap is the longest audio req's model takes in one request; 0: no
// limit known.
func (c *Client) modelCap(req Request, translate bool) time.Duration {
	m, _ := lookupModel(c.prov.modelName(req, translate))
	return m.maxDuration
}

// minDuration returns the smaller of a and b, where 0 means no limit.
func minDuration(a, b time.Duration) time.Duration {
	switch {
	case a <= 0:
		return b
	case b <= 0:
		return a
	}
	return min(a, b)
}

// planOptions returns how the client cuts audio, whatever the model.
func (c *Client) planOptions() audio.PlanOptions {
	o := audio.PlanOptions{MaxBytes: c.split.MaxBytes, MaxDuration: c.split.MaxDuration, Shrink: c.split.Shrink, TempDir: c.tempDir}
	if c.split.SkipSilence {
		o.SkipPause = cmp.Or(c.split.SkipPause, DefaultSkipPause)
	}
	return o
}

// inPieces reports whether src, sent with req (its body bodySize bytes),
// goes through the planner: when it must be cut (see mustSplit), or to
// leave its silence out.
func (c *Client) inPieces(src *source, bodySize int64, req Request, translate bool) bool {
	return c.split.SkipSilence || c.mustSplit(src, bodySize, req, translate)
}

// piece returns piece i of n of src as a source of its own: a byte range
// (or a re-encoded stretch) sent under the piece's file name, already
// probed.
func (src *source) piece(i, n int, p audio.Piece) *source {
	return &source{
		name:     fmt.Sprintf("%s (piece %d of %d)", src.name, i+1, n),
		filename: pieceName(src.filename, i, p.Format),
		format:   p.Format,
		file:     multipart.File{Size: p.Size, Open: p.Open},
		close:    func() error { return nil },
		probed:   true,
		probe:    audio.Info{Format: p.Format, Duration: pieceSeconds(p)},
	}
}

// pieceSeconds is how long the audio sent for p plays.
func pieceSeconds(p audio.Piece) time.Duration {
	if p.Sent > 0 {
		return p.Sent
	}
	return p.End - p.Start
}

// partOf returns how piece p's transcript t sits in the original audio.
func partOf(p audio.Piece, t *Transcription) part {
	// After a cut in a pause, what the pieces share (an MP3 piece's
	// pre-roll) is silence: nothing to de-duplicate.
	overlap := p.Overlap
	if p.Silence {
		overlap = 0
	}
	pt := part{t: t, offset: p.Offset.Seconds(), overlap: overlap.Seconds()}
	for _, sp := range p.Spans {
		pt.spans = append(pt.spans, span{at: sp.At.Seconds(), start: sp.Start.Seconds()})
	}
	return pt
}

// planOptionsFor returns how the client cuts audio sent with req: to
// whichever limit binds first, SplitOptions' or the model's (its duration
// cap, and its body limit where the client's is the provider's own).
func (c *Client) planOptionsFor(req Request, translate bool) audio.PlanOptions {
	o := c.planOptions()
	m, _ := lookupModel(c.prov.modelName(req, translate))
	o.MaxDuration = minDuration(o.MaxDuration, m.maxDuration)
	if m.maxBody > 0 && c.maxBody == nil {
		// Room for the framing, as DefaultMaxPieceBytes leaves under
		// MaxBodySize.
		if b := m.maxBody - (MaxBodySize - DefaultMaxPieceBytes); b > 0 && (o.MaxBytes == 0 || b < o.MaxBytes) && b < DefaultMaxPieceBytes {
			o.MaxBytes = b
		}
	}
	if req.format() == DiarizedJSON {
		// Room for the known speakers' clips (see diarize.go).
		limit := cmp.Or(o.MaxBytes, DefaultMaxPieceBytes)
		_, room := speakerClipLimit(limit)
		o.MaxBytes = max(audio.MinPieceBytes, limit-room)
	}
	return o
}

// cutError is the error for src, which must be cut, and cannot be: why.
func cutError(src *source, why error) error {
	return &InputError{Name: src.name, Size: src.file.Size, Err: fmt.Errorf("%w, and it cannot be cut: %w", ErrFileTooLarge, why)}
}

// checkCut returns the error that sending src would meet because it must
// be cut and cannot be, found cheaply (see audio.CanPlan); nil if src
// fits, or looks as if it can be cut. A dry run checks with it.
func (c *Client) checkCut(endpoint string, src *source, req Request) error {
	_, size, err := c.form(endpoint, src, req)
	switch {
	case err != nil:
		return err
	case !c.mustSplit(src, size, req, endpoint == "/audio/translations"):
		return nil
	}
	if err := audio.CanPlan(src.readerAt(), src.file.Size, c.planOptionsFor(req, endpoint == "/audio/translations")); err != nil {
		return cutError(src, err)
	}
	return nil
}

// sendPieces cuts src, sends its pieces and stitches their transcripts.
func (c *Client) sendPieces(ctx context.Context, endpoint string, src *source, req Request, h hooks) (*Transcription, int, error) {
	return c.sendPiecesKept(ctx, endpoint, src, req, h, nil)
}

// pieceStore keeps the transcripts of the pieces of one file as they
// arrive, so that a file one of whose pieces failed costs only that piece
// the next time (see OutputWriter).
type pieceStore interface {
	// load returns the transcript kept for the piece key, if any.
	load(key string, format ResponseFormat) (*Transcription, bool)
	// save keeps t, the transcript of the piece key, sent as name.
	save(key, name string, t *Transcription) error
}

// pieceKey names a piece sent with r: where it lies in the file, its size
// and format, and the request's fields (the prompt of a chained piece
// among them). The store adds the file's identity and version.
func pieceKey(i int, p audio.Piece, r Request) string {
	fp, _ := requestFingerprint(r)
	return fmt.Sprintf("piece %d: %d-%d ns, %d bytes of %s; request %s", i, p.Start, p.End, p.Size, p.Format.Filename("x"), fp)
}

// sendPiecesKept is sendPieces, keeping each piece's transcript in kept,
// when not nil, the moment it arrives, and sending only the pieces kept
// has no transcript of. With kept, a piece that fails does not cut the
// others short: those in flight finish and are kept (they are paid for),
// and the error is returned after them. A piece that fails on its own
// makes the error a *PartialError, or, with SplitOptions.AllowPartial,
// leaves a transcript with Missing set (see stitchPieces). A file that
// need not be cut is sent whole.
func (c *Client) sendPiecesKept(ctx context.Context, endpoint string, src *source, req Request, h hooks, kept pieceStore) (*Transcription, int, error) {
	translate := endpoint == "/audio/translations"
	form, size, err := c.form(endpoint, src, req)
	if err != nil {
		return nil, 0, err
	}
	must := c.mustSplit(src, size, req, translate)
	whole := func() (*Transcription, int, error) {
		return c.sendForm(ctx, endpoint, src.name, form, req.format(), cost(req.model(), src.seconds()), h)
	}
	if !must && !c.split.SkipSilence {
		return whole()
	}
	plan := c.planOptionsFor(req, translate)
	pieces, err := audio.Plan(ctx, src.readerAt(), src.file.Size, plan)
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, 0, ctx.Err()
	case err != nil && !must: // no silence can be looked for in it
		c.log.LogAttrs(ctx, slog.LevelDebug, "transcribe: silence not skipped", slog.String("file", src.name), slog.Any("error", err))
		return whole()
	case err != nil:
		return nil, 0, cutError(src, err)
	}
	defer audio.Release(pieces)
	c.log.InfoContext(ctx, "transcribe: cutting", "file", src.name, "pieces", len(pieces))

	// Each piece comes back with timestamps when the model gives them, so
	// that they can be shifted and overlaps removed.
	pieceReq := req
	pieceReq.ResponseFormat = JSON
	switch {
	case req.format() == DiarizedJSON:
		pieceReq = c.diarizedPieceRequest(req)
	case req.model() == "whisper-1" || req.format() == VerboseJSON || req.format() == SRT || req.format() == VTT:
		pieceReq.ResponseFormat = VerboseJSON
		if endpoint == "/audio/transcriptions" {
			pieceReq.TimestampGranularities = []Granularity{GranularityWord, GranularitySegment}
		}
	}

	parts := make([]part, len(pieces))
	attempts := make([]int, len(pieces))
	errs := make([]error, len(pieces))
	send := func(ctx context.Context, i int, r Request) (err error) {
		defer func() { errs[i] = err }()
		p := pieces[i]
		var key string
		if kept != nil {
			key = pieceKey(i, p, r)
			if t, ok := kept.load(key, r.format()); ok {
				parts[i] = partOf(p, t)
				return nil
			}
		}
		sub := src.piece(i, len(pieces), p)
		form, size, err := c.form(endpoint, sub, r)
		if err != nil {
			return err
		}
		if c.overLimit(size) {
			return c.tooLarge(sub, size)
		}
		t, n, err := c.sendForm(ctx, endpoint, sub.name, form, r.format(), cost(r.model(), sub.seconds()), h)
		attempts[i] = n
		if err != nil {
			return err
		}
		if kept != nil {
			if err := kept.save(key, sub.filename, t); err != nil {
				return err
			}
		}
		parts[i] = partOf(p, t)
		return nil
	}
	// gives up reports whether the pieces after one that failed with err
	// are not sent.
	givesUp := func(err error) bool { return !c.split.AllowPartial || stopsPieces(err) || ctx.Err() != nil }
	// Without a batch to keep them, a failure makes the other pieces
	// worthless (unless AllowPartial), and one that must stop everything
	// always does: they are cancelled. A batch lets the pieces in flight
	// finish, as they are kept, and vetoes the rest once it is aborted.
	cancels := func(err error) bool { return kept == nil && (!c.split.AllowPartial || stopsPieces(err)) }
	switch {
	case req.format() == DiarizedJSON:
		// In order while speakers can be made known, then in parallel
		// (see diarize.go).
		clip, _ := speakerClipLimit(cmp.Or(plan.MaxBytes, DefaultMaxPieceBytes))
		sp := c.newSpeakers(src, req, clip)
		next := 0
		for ; next < len(pieces) && !sp.full(); next++ {
			r := sp.request(pieceReq)
			if err := send(ctx, next, r); err != nil {
				if givesUp(err) {
					next = len(pieces)
				}
				continue
			}
			sp.learn(ctx, parts[next].t, sp.mapper(r), pieces[next])
		}
		if next < len(pieces) {
			r, first := sp.request(pieceReq), next
			eachPiece(ctx, len(pieces)-first, cancels, func(ctx context.Context, i int) error { return send(ctx, first+i, r) })
			for i := first; i < len(pieces); i++ {
				if parts[i].t != nil {
					sp.learn(ctx, parts[i].t, sp.mapper(r), pieces[i])
				}
			}
		}
	case c.split.ChainPrompts:
		r := pieceReq
		for i := range pieces {
			if i > 0 {
				r.Prompt = req.Prompt
				if prev := parts[i-1].t; prev != nil {
					r.Prompt = promptTail(prev.Text)
				}
			}
			if err := send(ctx, i, r); err != nil && givesUp(err) {
				break
			}
		}
	default:
		eachPiece(ctx, len(pieces), cancels, func(ctx context.Context, i int) error { return send(ctx, i, pieceReq) })
	}
	total := 0
	for _, n := range attempts {
		total += n
	}
	t, err := c.stitchPieces(ctx, src, pieces, parts, errs, req.format())
	if err != nil {
		return nil, total, err
	}
	t.Attempts = total
	return t, total, nil
}

// stopsPieces reports whether err, a piece's, ends the whole file's
// transcription, and is never taken for a partial transcript: a failure
// that must stop everything (see Fatal), or a batch's abort or budget.
func stopsPieces(err error) bool {
	return Fatal(err) || errors.Is(err, ErrBudgetReached) || errors.As(err, new(*AbortError))
}

// stitchPieces stitches the transcripts of the pieces of a cut file,
// parts (nil t where a piece has none), whose failures are errs; or
// returns the error they end with: the first that stops everything (see
// stopsPieces), else the first of any when ctx is done, else a
// *PartialError, unless SplitOptions.AllowPartial accepts the transcript
// of the pieces that were transcribed (at least one), with Missing set.
func (c *Client) stitchPieces(ctx context.Context, src *source, pieces []audio.Piece, parts []part, errs []error, format ResponseFormat) (*Transcription, error) {
	var first, stop error
	for _, err := range errs {
		switch {
		case err == nil:
		case stop == nil && stopsPieces(err):
			stop = err
		case first == nil:
			first = err
		}
	}
	switch {
	case stop != nil:
		return nil, stop
	case first != nil && ctx.Err() != nil:
		return nil, first
	}
	missing, failed := missingRanges(pieces, parts)
	if failed > 0 && (!c.split.AllowPartial || failed == len(pieces)) {
		if first == nil { // not sent: a chain of prompts stopped short
			first = errors.New("transcribe: pieces not sent")
		}
		return nil, &PartialError{Missing: missing, Pieces: len(pieces), Failed: failed, Err: first}
	}
	kept := make([]part, 0, len(parts))
	for i, p := range parts {
		if p.t == nil {
			continue
		}
		if i > 0 && parts[i-1].t == nil {
			p.overlap = 0 // nothing to share it with
		}
		kept = append(kept, p)
	}
	end := 0.0
	if parts[len(parts)-1].t == nil || c.split.SkipSilence {
		// The duration is still the file's, when its last piece, or
		// the silence at its end, was not transcribed.
		end = fileEnd(src, pieces).Seconds()
	}
	t, err := reassembleTo(kept, format, end)
	if err != nil {
		return nil, err
	}
	if t.Duration == 0 { // the format has none (srt, vtt, json): the plan's
		t.Duration = fileEnd(src, pieces).Seconds()
	}
	for _, p := range pieces {
		t.Pieces = append(t.Pieces, newPiece(p))
	}
	t.Missing = missing
	if c.split.SkipSilence {
		t.SkippedSeconds = skippedSeconds(src, pieces)
	}
	return t, nil
}

// fileEnd is where the audio of src, cut into pieces, ends: where the
// last piece ends, or later, where the probe says so exactly (a piece of
// silence alone at the end is not in the plan).
func fileEnd(src *source, pieces []audio.Piece) time.Duration {
	end := pieces[len(pieces)-1].End
	if info, err := src.info(); err == nil && info.Exact {
		end = max(end, info.Duration)
	}
	return end
}

// skippedSeconds returns the seconds of src's audio that its pieces left
// out: the silence within them, and the pieces of silence alone, not
// sent.
func skippedSeconds(src *source, pieces []audio.Piece) float64 {
	total := fileEnd(src, pieces)
	var left, covered time.Duration // left out of the pieces; held by them
	var end time.Duration
	for _, p := range pieces {
		left += p.End - p.Start - pieceSeconds(p)
		covered += max(0, p.End-max(p.Start, end))
		end = max(end, p.End)
	}
	return math.Round(max(0, left+total-covered).Seconds()*1000) / 1000
}

// missingRanges returns the stretches of the audio that the pieces
// without a transcript in parts held and no piece with one did, merged
// where they touch, and how many pieces have none.
func missingRanges(pieces []audio.Piece, parts []part) (missing []TimeRange, failed int) {
	has := func(i int) bool { return i >= 0 && i < len(parts) && parts[i].t != nil }
	for i, p := range pieces {
		if has(i) {
			continue
		}
		failed++
		r := TimeRange{Start: p.Start.Seconds(), End: p.End.Seconds()}
		if has(i - 1) {
			r.Start = max(r.Start, pieces[i-1].End.Seconds())
		}
		if has(i + 1) {
			// Where the next piece's own audio starts: after its
			// pre-roll (MP3), which only primes the decoder.
			r.End = min(r.End, (pieces[i+1].Start + pieces[i+1].PreRoll).Seconds())
		}
		if n := len(missing); n > 0 && missing[n-1].End >= r.Start {
			missing[n-1].End = max(missing[n-1].End, r.End)
			continue
		}
		missing = append(missing, r)
	}
	return missing, failed
}

// newPiece describes p, a piece of the plan.
func newPiece(p audio.Piece) Piece {
	out := Piece{
		Start: p.Start.Seconds(), End: p.End.Seconds(), Bytes: p.Size, Silence: p.Silence, Overlap: p.Overlap.Seconds(),
		Floor: p.Floor, Speech: p.Speech, PauseLevel: p.PauseLevel, Sent: pieceSeconds(p).Seconds(),
	}
	switch {
	case p.Index == 0:
	case p.Silence:
		out.Cut = CutPause
	default:
		out.Cut = CutHard
	}
	return out
}

// eachPiece runs f for 0..n-1 at once, until all have returned. The
// first error for which cancels reports true cancels the others, with
// that error as the cause; the others run to their end.
func eachPiece(ctx context.Context, n int, cancels func(error) bool, f func(context.Context, int) error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := f(ctx, i); err != nil && cancels(err) {
				cancel(err)
			}
		})
	}
	wg.Wait()
}

// pieceName names piece i, of format f, of a file sent as name:
// "talk.part02.mp3"; "talk.part02.flac" when talk.m4a was re-encoded.
func pieceName(name string, i int, f audio.Format) string {
	ext := filepath.Ext(name)
	base := fmt.Sprintf("%s.part%02d", strings.TrimSuffix(name, ext), i+1)
	if f.Filename(name) != name {
		return f.Filename(base)
	}
	return base + ext
}

// promptTail returns the end of text, cut at a word boundary, for a chained
// prompt.
func promptTail(text string) string {
	if len(text) <= promptTailChars {
		return text
	}
	tail := text[len(text)-promptTailChars:]
	if i := strings.IndexByte(tail, ' '); i >= 0 {
		tail = tail[i+1:]
	}
	return strings.ToValidUTF8(tail, "")
}
