package engine

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// committingTee passes its source on, writes it to w, commits once at the
// source's end and returns the commit's failure in place of io.EOF, again
// on every later read.
func TestCommittingTee(t *testing.T) {
	data := bytes.Repeat([]byte("blob "), 10000)
	for name, commitErr := range map[string]error{"commit succeeds": nil, "commit fails": errors.New("digest mismatch")} {
		t.Run(name, func(t *testing.T) {
			var w bytes.Buffer
			commits := 0
			tee := &committingTee{r: iotest.HalfReader(bytes.NewReader(data)), w: &w, commit: func() error {
				commits++
				if w.Len() != len(data) {
					t.Errorf("commit with %d bytes written, want %d", w.Len(), len(data))
				}
				return commitErr
			}}
			got, err := io.ReadAll(tee)
			if !bytes.Equal(got, data) || !bytes.Equal(w.Bytes(), data) {
				t.Errorf("passed on %d bytes, wrote %d; want %d", len(got), w.Len(), len(data))
			}
			if !errors.Is(err, commitErr) {
				t.Errorf("ReadAll: %v, want %v", err, commitErr)
			}
			if n, err := tee.Read(make([]byte, 10)); n != 0 || (commitErr != nil && !errors.Is(err, commitErr)) || (commitErr == nil && err != io.EOF) {
				t.Errorf("read after the end: %d, %v", n, err)
			}
			if commits != 1 {
				t.Errorf("%d commits, want 1", commits)
			}
		})
	}
}
