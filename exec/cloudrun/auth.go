//go:build cloudrun

package cloudrun

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
)

// Scope is the OAuth scope ork asks for.
const Scope = "https://www.googleapis.com/auth/cloud-platform"

// credentialsTimeout bounds the search for Application Default
// Credentials (which may probe for a metadata server), and tokenTimeout
// each request for an access token: missing credentials fail a task, they
// never hang it.
const (
	credentialsTimeout = 20 * time.Second
	tokenTimeout       = 30 * time.Second
)

// client returns the HTTP client that sends API requests, and a
// description of its credentials for error messages. With
// Config.HTTPClient it is that client; otherwise one that adds an access
// token from Application Default Credentials to every request. The
// credentials are looked up at the first call that needs them; a failed
// look-up is tried again at the next call.
func (e *Executor) client(ctx context.Context) (*http.Client, string, error) {
	e.authMu.Lock()
	defer e.authMu.Unlock()
	if e.httpClient != nil {
		return e.httpClient, e.credsDesc, nil
	}
	// The token source keeps this context for every token request it
	// makes later: it must not be ctx, which ends with this call.
	tokenCtx := context.WithValue(context.Background(), oauth2.HTTPClient,
		&http.Client{Timeout: tokenTimeout, Transport: e.transport})
	type found struct {
		creds *google.Credentials
		err   error
	}
	ch := make(chan found, 1)
	go func() {
		c, err := google.FindDefaultCredentials(tokenCtx, Scope)
		ch <- found{c, err}
	}()
	timer := time.NewTimer(credentialsTimeout)
	defer timer.Stop()
	var f found
	select {
	case f = <-ch:
	case <-timer.C:
		f.err = fmt.Errorf("no answer in %s", credentialsTimeout)
	case <-ctx.Done():
		return nil, "", fmt.Errorf("cloudrun: looking for Google credentials: %w", ctx.Err())
	}
	if f.err != nil {
		return nil, "", fmt.Errorf("cloudrun: no usable Google credentials (%v): set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or run `gcloud auth application-default login`", f.err)
	}
	e.credsDesc = describeCredentials(f.creds)
	e.httpClient = &http.Client{Transport: &oauth2.Transport{
		Source: oauth2.ReuseTokenSource(nil, f.creds.TokenSource),
		Base:   e.transport,
	}}
	return e.httpClient, e.credsDesc, nil
}

// describeCredentials names credentials for people: the service account
// and its key file, gcloud's user credentials, or the metadata server.
func describeCredentials(c *google.Credentials) string {
	var f struct {
		Type        string `json:"type"`
		ClientEmail string `json:"client_email"`
	}
	if len(c.JSON) == 0 || json.Unmarshal(c.JSON, &f) != nil {
		return "the metadata server's service account"
	}
	where := "gcloud's application default credentials"
	if p := os.Getenv("GOOGLE_APPLICATION_CREDENTIALS"); p != "" {
		where = "GOOGLE_APPLICATION_CREDENTIALS=" + p
	}
	switch f.Type {
	case "service_account":
		return fmt.Sprintf("service account %s (%s)", f.ClientEmail, where)
	case "authorized_user":
		return "user credentials (" + where + ")"
	}
	if f.Type == "" {
		return where
	}
	return fmt.Sprintf("%s credentials (%s)", f.Type, where)
}
