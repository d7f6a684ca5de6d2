package telemetry

import "github.com/qingcloud-grpc/qingcloud-grpc/internal/api"

// OtherAction is the action label of calls to actions outside the typed API (CallService may name
// any action), so that no caller can grow the label set: [api.OtherAction].
const OtherAction = api.OtherAction

// ActionLabel returns the action label of a call to action: the action when it is typed, else
// OtherAction. The rule is [api.MetricsLabel]'s; this is its name in the metrics code.
func ActionLabel(action string) string { return api.MetricsLabel(action) }
