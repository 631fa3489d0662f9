package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// A minimal W3C WebDriver client over net/http, driving headless Chromium
// through chromedriver: enough to open pages, find and click elements, run
// a script and take a screenshot.

// browserPaths finds chromium and chromedriver. Outside CI a machine
// without them skips the browser tests; in CI (CI=true) they must be there.
func browserPaths(t *testing.T) (chromium, driver string) {
	t.Helper()
	var err1, err2 error
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if chromium, err1 = osexec.LookPath(name); err1 == nil {
			break
		}
	}
	driver, err2 = osexec.LookPath("chromedriver")
	if err1 != nil || err2 != nil {
		msg := "the browser test needs chromium and chromedriver (Debian: apt-get install chromium chromium-driver)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return chromium, driver
}

type webDriver struct {
	t       *testing.T
	base    string // http://127.0.0.1:port
	session string
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startBrowser starts chromedriver and a headless Chromium session with a
// fresh profile and no background networking; both end with the test.
func startBrowser(t *testing.T, width, height int) *webDriver {
	t.Helper()
	chromium, driver := browserPaths(t)
	port := freePort(t)
	logf, err := os.Create(filepath.Join(t.TempDir(), "chromedriver.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := osexec.Command(driver, "--port="+strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromedriver: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	})
	wd := &webDriver{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var st struct {
			Value struct {
				Ready bool `json:"ready"`
			} `json:"value"`
		}
		if err := wd.call("GET", "/status", nil, &st); err == nil && st.Value.Ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("chromedriver did not become ready within 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	profile := t.TempDir()
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName":       "chrome",
		"goog:loggingPrefs": map[string]string{"browser": "ALL"},
		"goog:chromeOptions": map[string]any{
			"binary": chromium,
			"args": []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
				"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
				"--hide-scrollbars", "--user-data-dir=" + profile, fmt.Sprintf("--window-size=%d,%d", width, height)},
		},
	}}}
	var sess struct {
		Value struct {
			SessionID string `json:"sessionId"`
		} `json:"value"`
	}
	if err := wd.call("POST", "/session", caps, &sess); err != nil {
		t.Fatalf("new browser session: %v (chromedriver log: %s)", err, logf.Name())
	}
	wd.session = "/session/" + sess.Value.SessionID
	t.Cleanup(func() { wd.call("DELETE", wd.session, nil, nil) })
	return wd
}

func (wd *webDriver) call(method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, wd.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != 200 {
		var e struct {
			Value struct {
				Error   string `json:"error"`
				Message string `json:"message"`
			} `json:"value"`
		}
		json.Unmarshal(data, &e)
		return fmt.Errorf("webdriver %s %s: %d %s: %s", method, path, res.StatusCode, e.Value.Error, e.Value.Message)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

func (wd *webDriver) must(err error) {
	wd.t.Helper()
	if err != nil {
		wd.t.Fatal(err)
	}
}

func (wd *webDriver) open(url string) {
	wd.t.Helper()
	wd.must(wd.call("POST", wd.session+"/url", map[string]string{"url": url}, nil))
}

// exec runs a script in the page and returns its value.
func (wd *webDriver) exec(script string, args ...any) any {
	wd.t.Helper()
	if args == nil {
		args = []any{}
	}
	var out struct {
		Value any `json:"value"`
	}
	wd.must(wd.call("POST", wd.session+"/execute/sync", map[string]any{"script": script, "args": args}, &out))
	return out.Value
}

const elementKey = "element-6066-11e4-a52e-4f735466cecf"

// find waits up to timeout for an element matching the CSS selector.
func (wd *webDriver) find(css string, timeout time.Duration) string {
	wd.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var out struct {
			Value map[string]string `json:"value"`
		}
		err := wd.call("POST", wd.session+"/element", map[string]string{"using": "css selector", "value": css}, &out)
		if err == nil && out.Value[elementKey] != "" {
			return out.Value[elementKey]
		}
		if time.Now().After(deadline) {
			wd.t.Fatalf("no element %q within %s (last error: %v)\n%s", css, timeout, err, wd.diagnose())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (wd *webDriver) click(css string, timeout time.Duration) {
	wd.t.Helper()
	id := wd.find(css, timeout)
	wd.must(wd.call("POST", wd.session+"/element/"+id+"/click", map[string]any{}, nil))
}

// waitJS waits until the script returns true.
func (wd *webDriver) waitJS(what string, timeout time.Duration, script string, args ...any) {
	wd.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if v, _ := wd.exec(script, args...).(bool); v {
			return
		}
		if time.Now().After(deadline) {
			wd.t.Fatalf("%s: not within %s\n%s", what, timeout, wd.diagnose())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (wd *webDriver) resize(width, height int) {
	wd.t.Helper()
	wd.must(wd.call("POST", wd.session+"/window/rect", map[string]int{"width": width, "height": height}, nil))
}

// screenshot saves a PNG of the viewport to path.
func (wd *webDriver) screenshot(path string) {
	wd.t.Helper()
	var out struct {
		Value string `json:"value"`
	}
	wd.must(wd.call("GET", wd.session+"/screenshot", nil, &out))
	data, err := base64.StdEncoding.DecodeString(out.Value)
	if err != nil {
		wd.t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")) || len(data) < 10000 {
		wd.t.Fatalf("screenshot is not a PNG of a page (%d bytes)", len(data))
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		wd.t.Fatal(err)
	}
}

// diagnose returns the page's address, its browser log and the start of
// its body, for a failure message.
func (wd *webDriver) diagnose() string {
	var url, body struct {
		Value any `json:"value"`
	}
	wd.call("GET", wd.session+"/url", nil, &url)
	wd.call("POST", wd.session+"/execute/sync", map[string]any{"script": "return document.body.innerHTML.slice(0, 3000);", "args": []any{}}, &body)
	var b bytes.Buffer
	fmt.Fprintf(&b, "page %v\n", url.Value)
	for _, l := range wd.browserLog() {
		fmt.Fprintf(&b, "browser %s: %s\n", l.Level, l.Message)
	}
	fmt.Fprintf(&b, "body: %v", body.Value)
	return b.String()
}

// sendKeys types keys (WebDriver key codes such as "\uE007", Enter) into
// the element, which gets the focus.
func (wd *webDriver) sendKeys(css, keys string) {
	wd.t.Helper()
	id := wd.find(css, 5*time.Second)
	wd.must(wd.call("POST", wd.session+"/element/"+id+"/value", map[string]string{"text": keys}, nil))
}

type logEntry struct {
	Level   string `json:"level"`
	Message string `json:"message"`
}

// browserLog returns (and clears) the browser's console and network log.
func (wd *webDriver) browserLog() []logEntry {
	var logs struct {
		Value []logEntry `json:"value"`
	}
	wd.call("POST", wd.session+"/se/log", map[string]string{"type": "browser"}, &logs)
	return logs.Value
}
