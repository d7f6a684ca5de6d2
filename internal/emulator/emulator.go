// Package emulator is a local emulator of the QingCloud IaaS API (https://api.qingcloud.com/iaas/).
//
// It speaks the real wire protocol — signed GET query strings and POST forms on /iaas and /iaas/,
// HTTP 200 JSON answers with a ret_code — and models the common resource families (instances,
// volumes, EIPs, vxnets, security groups, key pairs, snapshots, tags, routers, load balancers) with
// their status/transition_status state machines and the jobs of delayed actions by hand-written
// handlers; every other kind that a Describe action of the descriptors lists (server certificates,
// router statics, load balancer policies, caches, RDBs, clusters, ...) is kept as generated iaasv1
// messages in one generic store answered from the descriptors (store.go). Each access key is
// an isolated account. Faults (error ret_codes, HTTP 502/503, connection resets, truncated bodies,
// latency, failing jobs) can be injected for reliability tests, through [Options], [Emulator.SetFaults]
// or the control API under /_emulator/.
//
// Job and transition states are derived from timestamps when they are read: no goroutine or timer
// runs per job, so an emulator with thousands of jobs costs nothing while idle.
//
// See docs/emulator.md for the full behaviour.
package emulator

import (
	"io"
	"log/slog"
	"maps"
	"net/http"
	"sort"
	"sync"
	"time"
)

// The example key pair of the QingCloud documentation; it is the only account when Options.Keys is nil.
const (
	DefaultAccessKeyID     = "QYACCESSKEYIDEXAMPLE"
	DefaultSecretAccessKey = "SECRETACCESSKEY"
)

// Defaults applied by New to zero Options fields.
const (
	DefaultJobPending  = 500 * time.Millisecond
	DefaultJobWorking  = 2 * time.Second
	DefaultTimeWindow  = 60 * time.Second
	DefaultQuota       = 2000
	DefaultQuotaWindow = 3600 * time.Second
	DefaultRetention   = 2 * time.Hour
)

// Options configure an Emulator. The zero value is usable: the default key pair, documented
// durations and the production API quota.
type Options struct {
	// Keys maps access key ids to secret access keys; nil means the default pair only.
	// Each key is its own isolated account.
	Keys map[string]string
	// JobPending is how long a job stays "pending"; default 500ms.
	JobPending time.Duration
	// JobWorking is how long a job then stays "working" before it ends successful (or failed, or
	// done with failure); default 2s.
	JobWorking time.Duration
	// TimeWindow is the allowed |now - time_stamp|; default 60s. A negative value disables the
	// time_stamp and expires checks.
	TimeWindow time.Duration
	// Quota is the number of API requests per QuotaWindow per access key; 0 means 2000, negative
	// disables the quota.
	Quota int
	// QuotaWindow is the sliding window of Quota; default 3600s.
	QuotaWindow time.Duration
	// Retention is how long deleted, released and terminated resources stay visible in their
	// terminal state; default 2h.
	Retention time.Duration
	// Faults are the initial faults.
	Faults Faults
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives one debug record per API request (never secrets or signatures); nil discards.
	Logger *slog.Logger
}

// Emulator is an http.Handler serving the QingCloud API on /iaas and /iaas/ (GET and POST) and the
// control API under /_emulator/. It is safe for concurrent use.
type Emulator struct {
	keys        map[string]string
	jobPending  time.Duration
	jobWorking  time.Duration
	timeWindow  time.Duration
	retention   time.Duration
	now         func() time.Time
	log         *slog.Logger
	quota       *quotaTracker
	stats       *statsCollector
	faultsMu    sync.RWMutex
	faults      Faults
	accountsMu  sync.RWMutex
	accounts    map[string]*account
	keyIDsOrder []string
}

// New returns an Emulator for opts, with the defaults of Options applied.
func New(opts Options) *Emulator {
	e := &Emulator{
		keys:       opts.Keys,
		jobPending: opts.JobPending,
		jobWorking: opts.JobWorking,
		timeWindow: opts.TimeWindow,
		retention:  opts.Retention,
		now:        opts.Now,
		log:        opts.Logger,
		faults:     opts.Faults.clone(),
	}
	if e.keys == nil {
		e.keys = map[string]string{DefaultAccessKeyID: DefaultSecretAccessKey}
	} else {
		e.keys = maps.Clone(e.keys)
	}
	if e.jobPending <= 0 {
		e.jobPending = DefaultJobPending
	}
	if e.jobWorking <= 0 {
		e.jobWorking = DefaultJobWorking
	}
	if e.timeWindow == 0 {
		e.timeWindow = DefaultTimeWindow
	}
	if e.retention <= 0 {
		e.retention = DefaultRetention
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.log == nil {
		e.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	quota, window := opts.Quota, opts.QuotaWindow
	if quota == 0 {
		quota = DefaultQuota
	}
	if window <= 0 {
		window = DefaultQuotaWindow
	}
	e.quota = newQuotaTracker(quota, window)
	e.stats = newStatsCollector()
	for id := range e.keys {
		e.keyIDsOrder = append(e.keyIDsOrder, id)
	}
	sort.Strings(e.keyIDsOrder)
	e.resetAccounts()
	return e
}

// resetAccounts replaces every account with a fresh one (seeded defaults only).
func (e *Emulator) resetAccounts() {
	now := e.now()
	accounts := make(map[string]*account, len(e.keys))
	for _, id := range e.keyIDsOrder {
		accounts[id] = newAccount(e, id, now)
	}
	e.accountsMu.Lock()
	e.accounts = accounts
	e.accountsMu.Unlock()
}

// Reset drops all state: resources, jobs, quota usage and statistics. Faults are kept.
func (e *Emulator) Reset() {
	e.resetAccounts()
	e.quota.reset()
	e.stats.reset()
}

func (e *Emulator) account(keyID string) *account {
	e.accountsMu.RLock()
	defer e.accountsMu.RUnlock()
	return e.accounts[keyID]
}

// SetFaults replaces the active faults.
func (e *Emulator) SetFaults(f Faults) {
	f = f.clone()
	e.faultsMu.Lock()
	e.faults = f
	e.faultsMu.Unlock()
}

// Faults returns a copy of the active faults.
func (e *Emulator) Faults() Faults {
	e.faultsMu.RLock()
	defer e.faultsMu.RUnlock()
	return e.faults.clone()
}

// ServeHTTP routes /iaas and /iaas/ to the API and /_emulator/ to the control API.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/iaas", "/iaas/":
		e.serveAPI(w, r)
	case controlFaults, controlStats, controlReset:
		e.serveControl(w, r)
	default:
		writeJSON(w, http.StatusNotFound, map[string]any{
			"ret_code": 1400,
			"message":  "PermissionDenied, can't handle this request",
		})
	}
}
