package multipart

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// writerOnly hides io.Discard's ReadFrom, so the copy below goes through a
// caller's buffer exactly as net/http's body writer does.
type writerOnly struct{ io.Writer }

// BenchmarkUpload produces a whole request body for a file on disk. Its
// B/op is what one upload costs in memory, and must not grow with the file.
func BenchmarkUpload(b *testing.B) {
	for _, size := range []int64{1 << 20, 100 << 20} {
		b.Run(fmt.Sprintf("file=%dMB", size>>20), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "a.wav")
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				b.Fatal(err)
			}
			if err := os.Truncate(path, size); err != nil { // sparse: no disk I/O
				b.Fatal(err)
			}
			fh, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			defer fh.Close()
			buf := make([]byte, 32<<10)
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				f := NewForm()
				f.WriteField("model", "whisper-1")
				f.WriteField("response_format", "verbose_json")
				f.AddFile("file", "a.wav", "audio/wav", FileFromReaderAt(fh, size))
				body, err := f.NewBody()
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.CopyBuffer(writerOnly{io.Discard}, body, buf); err != nil {
					b.Fatal(err)
				}
				body.Close()
			}
		})
	}
}
