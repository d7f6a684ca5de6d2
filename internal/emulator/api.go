package emulator

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// handler executes one action for an account; it runs under the account lock after settle.
type handler func(a *account, r *request) (result, *apiError)

type actionSpec struct {
	h      handler
	noZone bool // the action takes no zone parameter (zone is optional)
}

// actions is the table of modeled actions, filled by the init functions of the resource files.
var actions = map[string]actionSpec{}

func register(name string, h handler) { actions[name] = actionSpec{h: h} }

func registerNoZone(name string, h handler) { actions[name] = actionSpec{h: h, noZone: true} }

// ModeledActions returns the names of the actions the emulator models with state.
func ModeledActions() []string {
	out := make([]string, 0, len(actions))
	for name := range actions {
		out = append(out, name)
	}
	return out
}

// serveAPI handles one request to /iaas or /iaas/.
func (e *Emulator) serveAPI(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{
			"ret_code": 1100, "message": "ParameterError, use GET or POST",
		})
		return
	}
	start := time.Now()
	params, aerr := readParams(req)
	action := params["action"]
	keyID := ""
	if aerr == nil {
		keyID, aerr = e.authenticate(req.Method, req.URL.Path, params)
	}
	e.stats.request(keyID, action)
	if aerr == nil && !e.quota.allow(keyID, e.now()) {
		aerr = newError(2500, "QuotaExceeded", "API request quota of %d per %s exceeded for access key [%s], please try later",
			e.quota.limit, e.quota.window, keyID)
	}

	faults := e.Faults()
	fault := ""
	if aerr == nil && faults.applies(action) {
		if faults.Latency > 0 {
			e.stats.fault(keyID, action, faultLatency)
			sleep(req.Context(), faults.Latency)
		}
		fault = faults.pick()
		if fault != "" {
			e.stats.fault(keyID, action, fault)
		}
		switch fault {
		case faultRetCode5100, faultRetCode5000, faultRetCode2500:
			aerr = faultError(fault)
		case faultHTTP502:
			writeHTTPError(w, http.StatusBadGateway)
			e.logRequest(req, keyID, action, -502, start)
			return
		case faultHTTP503:
			writeHTTPError(w, http.StatusServiceUnavailable)
			e.logRequest(req, keyID, action, -503, start)
			return
		case faultConnReset:
			e.logRequest(req, keyID, action, -1, start)
			if !resetConnection(w) {
				panic(http.ErrAbortHandler)
			}
			return
		}
	}

	var body []byte
	if aerr == nil {
		body, aerr = e.dispatch(keyID, action, params, faults)
		if aerr == nil {
			defer releaseAnswer(body) // written by encodeSuccess; w has copied it once writeBody returns
		}
	}
	code := 0
	if aerr != nil {
		body, code = encodeError(aerr), aerr.code
	}
	if fault == faultTruncatedBody {
		body = truncate(body)
	}
	writeBody(w, http.StatusOK, body)
	e.stats.retCode(keyID, action, code)
	e.logRequest(req, keyID, action, code, start)
}

func (e *Emulator) logRequest(req *http.Request, keyID, action string, code int, start time.Time) {
	e.log.LogAttrs(req.Context(), slog.LevelDebug, "emulator request",
		slog.String("method", req.Method), slog.String("path", req.URL.Path),
		slog.String("access_key_id", keyID), slog.String("action", action),
		slog.Int("ret_code", code), slog.Duration("elapsed", time.Since(start)))
}

// dispatch runs an authenticated action and renders its answer. Actions of the generated
// descriptors are checked against them first (required parameters, scalar syntax); modeled
// actions then run their handler, the others get the spec-driven empty answer.
func (e *Emulator) dispatch(keyID, action string, params map[string]string, f Faults) ([]byte, *apiError) {
	if action == "" {
		return nil, errMissing("action")
	}
	spec, modeled := actions[action]
	sa := specActions()[action]
	if !modeled && sa == nil {
		return nil, errUnknownAction
	}
	r := &request{action: action, params: params, keyID: keyID, faults: f}
	noZone := spec.noZone
	if !modeled {
		noZone = sa.noZone
	}
	if err := r.resolveZone(noZone); err != nil {
		return nil, err
	}
	if sa != nil {
		if err := sa.validate(params); err != nil {
			return nil, err
		}
	}
	a := e.account(keyID)
	if a == nil {
		return nil, newError(1200, "AuthFailure", "access_key_id [%s] does not exist", keyID)
	}
	h := spec.h
	if !modeled {
		h = func(a *account, r *request) (result, *apiError) { return a.genericAnswer(r, sa) }
	}
	return e.run(a, r, h)
}

// run calls h under the account lock, after settling deferred changes, and writes its answer before
// the lock is released: the answer's items are the account's stored messages themselves (render.go),
// which other requests change under the lock. A panic becomes a 5000 answer.
func (e *Emulator) run(a *account, r *request, h handler) (b []byte, err *apiError) {
	a.mu.Lock()
	defer a.mu.Unlock()
	defer func() {
		if p := recover(); p != nil {
			e.log.Error("emulator handler panic", "action", r.action, "panic", fmt.Sprint(p))
			b, err = nil, newError(5000, "InternalError", "internal error in [%s]", r.action)
		}
	}()
	r.now = e.now()
	a.settle(r.now)
	res, err := h(a, r)
	if err != nil {
		return nil, err
	}
	b, merr := encodeSuccess(r.action, res)
	if merr != nil {
		return nil, newError(5000, "InternalError", "%v", merr)
	}
	return b, nil
}

// resolveZone validates the zone parameter and sets r.zone and r.zones.
func (r *request) resolveZone(optional bool) *apiError {
	z := strings.ToLower(strings.TrimSpace(r.params["zone"]))
	if z == "" {
		if !optional {
			return errMissing("zone")
		}
		r.zones = allZoneIDs()
		return nil
	}
	zones, ok := resolveZone(z)
	if !ok {
		return errInvalid("zone [%s] is not available", clip(z))
	}
	r.zone, r.zones = z, zones
	return nil
}
