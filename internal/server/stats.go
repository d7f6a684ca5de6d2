package server

import (
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/backend"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/telemetry"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/watch"
)

// BackendStats converts the counters of one backend client (backend.Client.Stats) into the form of
// Config.UpstreamStats, under the credential profile's name. The quota budget is left out when it is
// unlimited. Never pass an access key id as the profile: it becomes a metric label.
func BackendStats(profile string, st backend.Stats) telemetry.UpstreamStats {
	out := telemetry.UpstreamStats{Profile: profile, Actions: make(map[string]telemetry.UpstreamActionStats, len(st.Actions))}
	for name, a := range st.Actions {
		out.Actions[name] = telemetry.UpstreamActionStats{Calls: a.Calls, Retries: a.Retries, Coalesced: a.Coalesced, Refused: a.Refused}
	}
	if b := st.Budget; b.Limit >= 0 {
		out.Budget = &telemetry.BudgetStats{Limit: float64(b.Limit), Remaining: float64(b.Remaining), Classes: map[string]telemetry.BudgetClassStats{}}
		for class, cs := range b.Classes {
			out.Budget.Classes[class] = telemetry.BudgetClassStats{Remaining: float64(cs.Remaining), Refused: cs.Refused}
		}
	}
	return out
}

// WatchStats converts the figures of a watch hub (watch.Hub.Stats) into the form of
// Config.WatchStats.
func WatchStats(st watch.Stats) telemetry.WatchStats {
	return telemetry.WatchStats{
		Watches: st.Watches, Pollers: st.Pollers, Jobs: st.Jobs, Resources: st.Resources,
		Calls: st.Calls, Failures: st.Failures, Events: st.Events, Saved: st.Saved,
	}
}
