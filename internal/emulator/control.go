package emulator

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
)

// Control API paths (outside /iaas, no authentication).
const (
	controlFaults = "/_emulator/faults"
	controlStats  = "/_emulator/stats"
	controlReset  = "/_emulator/reset"
)

// serveControl handles the control API:
//
//	GET  /_emulator/faults  the active Faults as JSON
//	PUT  /_emulator/faults  replace the Faults (JSON body; 400 on invalid values)
//	GET  /_emulator/stats   Stats as JSON
//	POST /_emulator/reset   drop all state (resources, jobs, quota usage, stats); faults are kept
func (e *Emulator) serveControl(w http.ResponseWriter, r *http.Request) {
	allow := func(methods ...string) bool {
		for _, m := range methods {
			if r.Method == m {
				return true
			}
		}
		w.Header().Set("Allow", strings.Join(methods, ", "))
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method not allowed"})
		return false
	}
	switch r.URL.Path {
	case controlFaults:
		if !allow(http.MethodGet, http.MethodPut) {
			return
		}
		if r.Method == http.MethodPut {
			var f Faults
			dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&f); err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad faults JSON: " + err.Error()})
				return
			}
			if err := f.Validate(); err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
				return
			}
			e.SetFaults(f)
			e.log.Info("emulator faults changed", "remote", remoteHost(r))
		}
		writeJSON(w, http.StatusOK, e.Faults())
	case controlStats:
		if allow(http.MethodGet) {
			writeJSON(w, http.StatusOK, e.Stats())
		}
	case controlReset:
		if allow(http.MethodPost) {
			e.Reset()
			e.log.Info("emulator reset", "remote", remoteHost(r))
			writeJSON(w, http.StatusOK, map[string]bool{"reset": true})
		}
	}
}

func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
