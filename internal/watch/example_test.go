package watch_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"time"

	"google.golang.org/grpc/status"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/backend"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/signer"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/tenant"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/watch"
)

// Follow the job of a RunInstances call until it ends, then the instance until it is usable.
func ExampleHub_Jobs() {
	emu := httptest.NewServer(emulator.New(emulator.Options{JobPending: 20 * time.Millisecond, JobWorking: 50 * time.Millisecond, Quota: -1}))
	defer emu.Close()
	be, err := backend.New(backend.Config{Endpoint: emu.URL + "/iaas/",
		Credentials: signer.Credentials{AccessKeyID: emulator.DefaultAccessKeyID, SecretAccessKey: emulator.DefaultSecretAccessKey}})
	if err != nil {
		panic(err)
	}
	hub := watch.NewSingle(be, "pek3a", watch.Options{MinInterval: 20 * time.Millisecond})
	defer hub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	data, err := be.Call(ctx, "RunInstances", map[string]string{"zone": "pek3a", "image_id": "centos7x64d",
		"instance_type": "c1m1", "login_mode": "passwd", "login_passwd": "Passw0rd1", "vxnets.1": "vxnet-0"}, false)
	if err != nil {
		panic(err)
	}
	var run struct {
		JobID     string   `json:"job_id"`
		Instances []string `json:"instances"`
	}
	_ = json.Unmarshal(data, &run)

	jobs, err := hub.Jobs(ctx, "", []string{run.JobID})
	if err != nil {
		panic(err)
	}
	defer jobs.Close()
	for {
		msg, err := jobs.Recv(ctx)
		if errors.Is(err, io.EOF) {
			break // every job is terminal
		}
		if err != nil {
			panic(err)
		}
		if ev := msg.GetJob(); ev.GetTerminal() {
			fmt.Println(ev.GetJob().GetJobAction(), ev.GetJob().GetStatus(), "failed:", ev.GetFailed())
		}
	}

	insts, err := hub.Resources(ctx, "", "instance", run.Instances, "running")
	if err != nil {
		panic(err)
	}
	defer insts.Close()
	for {
		msg, err := insts.Recv(ctx)
		if errors.Is(err, io.EOF) {
			break // every instance is settled or gone
		}
		if err != nil {
			panic(err)
		}
		if ev := msg.GetResource(); ev.GetSettled() {
			fmt.Println(ev.GetKind(), ev.GetStatus(), "with a private IP:", ev.GetPrivateIp() != "")
		}
	}
	// Output:
	// RunInstances successful failed: false
	// instance running with a private IP: true
}

// A multi-tenant server resolves each caller's tenant (credential profile) from the identity the auth
// interceptors put in the call's context; watchers of the same profile and zone share a poller.
func ExampleNew() {
	var tenants []tenant.Tenant
	for _, p := range []struct{ profile, key, secret, zone string }{{"alice", "KEY-A", "SECRET-A", "pek3a"}, {"bob", "KEY-B", "SECRET-B", "gd2"}} {
		be, err := backend.New(backend.Config{Endpoint: backend.DefaultEndpoint, Credentials: signer.Credentials{AccessKeyID: p.key, SecretAccessKey: p.secret}})
		if err != nil {
			panic(err)
		}
		tenants = append(tenants, tenant.Tenant{Profile: p.profile, Upstream: be, Zone: p.zone})
	}
	dir, err := tenant.NewDirectory(tenants...)
	if err != nil {
		panic(err)
	}
	hub, err := watch.New(watch.Options{Tenants: dir})
	if err != nil {
		panic(err)
	}
	defer hub.Close()
	_, err = hub.Jobs(context.Background(), "", []string{"j-12345678"})
	fmt.Println(status.Code(err))
	// Output: Unauthenticated
}
