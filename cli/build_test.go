package cli

import (
	"debug/buildinfo"
	"debug/elf"
	"os"
	"runtime"
	"strings"
	"testing"
)

// ork starts fast: built as the Makefile builds it, it is a static binary
// without cgo (no dynamic loader, no C library at start) and without the
// man-page generator of urfave/cli (a markdown package whose package
// initialisation alone took 5 ms).
func TestBuildIsStatic(t *testing.T) {
	mk, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"BUILD_ENV = " + releaseEnv + "\n", "BUILD_TAGS = " + releaseTags + "\n", "$(BUILD_ENV) $(GO) build -tags $(BUILD_TAGS) -o $(BIN)/ork ."} {
		if !strings.Contains(string(mk), want) {
			t.Errorf("the Makefile does not say %q: the end-to-end tests build ork another way than users get it", want)
		}
	}
	info, err := buildinfo.ReadFile(orkBin)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if settings["CGO_ENABLED"] != "0" {
		t.Errorf("ork was built with CGO_ENABLED=%q; want 0", settings["CGO_ENABLED"])
	}
	for _, m := range info.Deps {
		if strings.Contains(m.Path, "blackfriday") || strings.Contains(m.Path, "go-md2man") {
			t.Errorf("ork links %s (urfave/cli's docs), which is slow to initialise", m.Path)
		}
	}
	if runtime.GOOS != "linux" {
		return
	}
	f, err := elf.Open(orkBin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("ork is dynamically linked (it has an ELF interpreter)")
		}
	}
}
