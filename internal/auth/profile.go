package auth

import "context"

// Profile returns the credential profile of the caller in ctx. A context without an Identity (a call
// that skipped the interceptors) is UNAUTHENTICATED: there is no fallback to some default profile.
func Profile(ctx context.Context) (string, error) {
	id, ok := FromContext(ctx)
	if !ok {
		return "", unauthenticated("MISSING_CREDENTIALS", "the call was not authenticated")
	}
	return id.Profile, nil
}
