package audio

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// ErrNeedsFFmpeg is returned (wrapped, with the format named) when audio
// of a format Go does not decode is to be decoded and no ffmpeg executable
// is on PATH.
var ErrNeedsFFmpeg = errors.New("ffmpeg is needed but not on PATH")

// FFmpegRate is the sample rate, in samples per second, of the audio that
// decoders running ffmpeg yield.
const FFmpegRate = 16000

// lookFFmpeg finds the ffmpeg executable; tests replace it.
var lookFFmpeg = func() (string, error) { return exec.LookPath("ffmpeg") }

// ffmpegDecoder reads 16-bit mono PCM from an ffmpeg process.
type ffmpegDecoder struct {
	cmd     *exec.Cmd
	out     *bufio.Reader
	stderr  *capped
	cancel  context.CancelFunc
	rate    int
	buf     []byte
	n       int64  // bytes read
	cleanup func() // removes a temporary input, if any, when done
	err     error  // once the process is done: io.EOF or why it failed
}

// newFFmpegDecoder decodes the file r (of format f, size bytes) with
// ffmpeg at FFmpegRate, reading it as ffmpegInput says.
func newFFmpegDecoder(ctx context.Context, f Format, r io.ReaderAt, size int64) (Decoder, error) {
	if _, err := lookFFmpeg(); err != nil {
		return nil, fmt.Errorf("audio: decoding %s: %w", strings.ToUpper(string(f)), ErrNeedsFFmpeg)
	}
	input, stdin, cleanup, err := ffmpegInput(f, r, size, "")
	if err != nil {
		return nil, err
	}
	d, err := startFFmpeg(ctx, f, input, stdin, "", FFmpegRate)
	if err != nil {
		cleanup()
		return nil, err
	}
	d.cleanup = cleanup
	return d, nil
}

// ffmpegInput returns how ffmpeg is to read the file r of format f: an
// *os.File (or an io.SectionReader of all of one) by its name; other
// readers from standard input, except MP4, whose index may be at the end,
// out of a pipe's reach: that is copied to a temporary file in dir first,
// which cleanup removes.
func ffmpegInput(f Format, r io.ReaderAt, size int64, dir string) (input string, stdin io.Reader, cleanup func(), err error) {
	cleanup = func() {}
	if sr, ok := r.(*io.SectionReader); ok {
		if outer, off, n := sr.Outer(); off == 0 && n == size {
			r = outer
		}
	}
	if file, ok := r.(*os.File); ok {
		if st, err := file.Stat(); err == nil && st.Mode().IsRegular() && st.Size() == size {
			return file.Name(), nil, cleanup, nil
		}
	}
	if f != MP4 {
		return "pipe:0", io.NewSectionReader(r, 0, size), cleanup, nil
	}
	tmp, err := os.CreateTemp(dir, "steno-*.mp4")
	if err != nil {
		return "", nil, nil, fmt.Errorf("audio: %w", err)
	}
	_, err = io.Copy(tmp, io.NewSectionReader(r, 0, size))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", nil, nil, fmt.Errorf("audio: %w", err)
	}
	return tmp.Name(), nil, func() { os.Remove(tmp.Name()) }, nil
}

// startFFmpeg starts ffmpeg decoding input (a file name, or "pipe:0" to
// read stdin) of format f (named in errors; inFormat, if set, is given to
// ffmpeg's -f) to mono PCM at rate. Options in pre go before the input's
// (a seek: "-ss", "12.5", "-t", "60").
func startFFmpeg(ctx context.Context, f Format, input string, stdin io.Reader, inFormat string, rate int, pre ...string) (*ffmpegDecoder, error) {
	path, err := lookFFmpeg()
	if err != nil {
		return nil, fmt.Errorf("audio: decoding %s: %w", strings.ToUpper(string(f)), ErrNeedsFFmpeg)
	}
	ctx, cancel := context.WithCancel(ctx)
	if inFormat != "" {
		pre = append([]string{"-f", inFormat}, pre...)
	}
	args := append(ffmpegArgs(input, stdin != nil, rate, pre), "-f", "s16le", "pipe:1")
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdin = stdin
	d := &ffmpegDecoder{cmd: cmd, stderr: &capped{max: 2 << 10}, cancel: cancel, rate: rate, buf: make([]byte, 32<<10)}
	cmd.Stderr = d.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("audio: ffmpeg: %w", err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("audio: ffmpeg: %w", err)
	}
	d.out = bufio.NewReaderSize(out, 32<<10)
	return d, nil
}

// ffmpegArgs returns the arguments of an ffmpeg that reads the first audio
// stream of input (stdin: from standard input), with the input options
// pre, and converts it to mono at rate; the output's follow.
func ffmpegArgs(input string, stdin bool, rate int, pre []string) []string {
	args := []string{"-hide_banner", "-loglevel", "error", "-y"}
	if !stdin {
		args = append(args, "-nostdin")
	}
	args = append(args, pre...)
	return append(args, "-i", input, "-map", "0:a:0", "-ac", "1", "-ar", fmt.Sprint(rate))
}

func (d *ffmpegDecoder) SampleRate() int { return d.rate }

func (d *ffmpegDecoder) Read(p []float32) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	n, err := io.ReadFull(d.out, d.buf[:min(2*len(p), len(d.buf))])
	d.n += int64(n)
	if err != nil {
		d.wait()
	}
	if n/2 == 0 && d.err != nil {
		return 0, d.err
	}
	return mixDown(p, d.buf[:n-n%2], 1, 16, false), nil
}

// wait ends the process and sets d.err to io.EOF if ffmpeg succeeded, else
// to its error.
func (d *ffmpegDecoder) wait() {
	if d.err != nil {
		return
	}
	d.err = io.EOF
	err := d.cmd.Wait()
	msg := strings.TrimSpace(d.stderr.String())
	if err != nil {
		d.err = fmt.Errorf("audio: ffmpeg: %w: %s", err, msg)
	} else if d.n == 0 && msg != "" { // ffmpeg may exit 0 having decoded nothing
		d.err = fmt.Errorf("audio: ffmpeg: %s", msg)
	}
	d.cancel()
	if d.cleanup != nil {
		d.cleanup()
	}
}

// Close kills ffmpeg if it is still running and waits for it.
func (d *ffmpegDecoder) Close() error {
	if d.err == nil {
		d.cancel()
		d.wait()
		d.err = errors.New("audio: decoder closed")
	}
	return nil
}

// capped is a writer that keeps the first max bytes written to it.
type capped struct {
	strings.Builder
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	c.Builder.Write(p[:min(len(p), max(c.max-c.Len(), 0))])
	return len(p), nil
}
