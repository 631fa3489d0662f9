package filedb

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func benchCommit(b *testing.B, n int) {
	d, err := Open(initDir(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	dir := filepath.Join(d.root, TasksDir, "r")
	os.MkdirAll(dir, 0o755)
	ws := make([]fileWrite, n)
	for i := range ws {
		ws[i] = fileWrite{path: filepath.Join(dir, fmt.Sprintf("t.%d.json", i)), data: []byte(`{"id":"x","status":"running","attempt":1}` + "\n")}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := d.commit(ws, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/file")
}

func initDir(tb testing.TB) string {
	dir := filepath.Join(tb.TempDir(), ".ork")
	if err := Init(dir); err != nil {
		tb.Fatal(err)
	}
	return dir
}

func BenchmarkCommit1(b *testing.B)   { benchCommit(b, 1) }
func BenchmarkCommit8(b *testing.B)   { benchCommit(b, 8) }
func BenchmarkCommit100(b *testing.B) { benchCommit(b, 100) }
