package watch_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/backend"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/signer"
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

// A multi-tenant server picks each caller's account; watchers of the same account and zone share a
// poller.
func ExampleNew() {
	clients := map[string]watch.Upstream{} // access key id -> its backend.Client, filled elsewhere
	hub, err := watch.New(watch.Options{
		Account: func(ctx context.Context) (string, watch.Upstream, string, error) {
			md, _ := metadata.FromIncomingContext(ctx)
			for _, key := range md.Get("x-qingcloud-access-key-id") {
				if up := clients[key]; up != nil {
					return key, up, "pek3a", nil
				}
			}
			return "", nil, "", status.Error(codes.Unauthenticated, "unknown caller")
		},
	})
	if err != nil {
		panic(err)
	}
	defer hub.Close()
	_, err = hub.Jobs(context.Background(), "", []string{"j-12345678"})
	fmt.Println(status.Code(err))
	// Output: Unauthenticated
}
