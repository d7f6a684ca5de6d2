package emulator

import (
	"crypto/rand"
	"encoding/base64"
	"slices"
	"strings"
)

// Key pairs are a kind of the generic store (CreateKeyPair, DescribeKeyPairs, DeleteKeyPairs and
// ModifyKeyPairAttributes are answered there, with the hooks of its kindRows row below); this file
// keeps what relates them to instances. A key pair's instance_ids are its item's field.

func init() {
	register("AttachKeyPairs", attachKeyPairs)
	register("DetachKeyPairs", detachKeyPairs)
}

// keypairRow is the generic store's row of key pairs: the key material at creation, and no deletion
// while attached.
var keypairRow = kindRow{prefix: "kp", create: createKeyPair, deletable: func(a *account, s *stored) *apiError {
	if ids := s.strs("instance_ids"); len(ids) > 0 {
		return errDenied("keypair [%s] is attached to instances %v, detach it first", s.id, ids)
	}
	return nil
}}

// randRead is the randomness of key material: crypto/rand's, a variable so that a test can make the
// emulator's answers reproducible.
var randRead = rand.Read

func randomB64(n int) string {
	b := make([]byte, n)
	_, _ = randRead(b)
	return base64.StdEncoding.EncodeToString(b)
}

// createKeyPair completes a new key pair: mode system generates a placeholder key pair and answers
// its private_key, mode user takes public_key.
func createKeyPair(a *account, r *request, kp *stored, _ int, res result) *apiError {
	mode, err := r.oneOf("mode", "system", "system", "user")
	if err != nil {
		return err
	}
	method, err := r.oneOf("encrypt_method", "ssh-rsa", "ssh-rsa", "ssh-dss")
	if err != nil {
		return err
	}
	kp.setStr("encrypt_method", method)
	if mode == "user" {
		pub, err := r.required("public_key")
		if err != nil {
			return err
		}
		if !strings.HasPrefix(pub, "ssh-") && !strings.HasPrefix(pub, "ecdsa-") {
			return errInvalid("parameter [public_key] is not an OpenSSH public key")
		}
		kp.setStr("pub_key", pub)
		return nil
	}
	kp.setStr("pub_key", method+" AAAA"+randomB64(48)+" "+kp.id)
	res["private_key"] = "-----BEGIN RSA PRIVATE KEY-----\n" + randomB64(96) + "\n-----END RSA PRIVATE KEY-----\n"
	return nil
}

// keypairMembers parses keypairs.N and instances.N.
func keypairMembers(a *account, r *request) ([]*stored, []*stored, *apiError) {
	kids, err := r.requiredList("keypairs")
	if err != nil {
		return nil, nil, err
	}
	iids, err := r.requiredList("instances")
	if err != nil {
		return nil, nil, err
	}
	kps, err := lookup(r, a.storeOf(storeKinds()["keypair"]), kids)
	if err != nil {
		return nil, nil, err
	}
	insts, err := lookup(r, a.instances(), iids)
	if err != nil {
		return nil, nil, err
	}
	for _, inst := range insts {
		if err := inst.need("changed", "running", "stopped"); err != nil {
			return nil, nil, err
		}
	}
	return kps, insts, nil
}

func attachKeyPairs(a *account, r *request) (result, *apiError) {
	kps, insts, err := keypairMembers(a, r)
	if err != nil {
		return nil, err
	}
	j := a.newJob(r, append(ids(kps), ids(insts)...))
	for i, inst := range insts {
		inst := inst
		var added []*stored
		for _, kp := range kps {
			if m := instMsg(inst); !slices.Contains(m.KeypairIds, kp.id) {
				m.KeypairIds = append(m.KeypairIds, kp.id)
				kp.setStrs("instance_ids", append(kp.strs("instance_ids"), inst.id))
				added = append(added, kp)
			}
		}
		a.begin(&inst.base, j, i, len(insts), op{label: "attaching keypairs", undo: func() {
			for _, kp := range added {
				instMsg(inst).KeypairIds = removeString(instMsg(inst).KeypairIds, kp.id)
				kp.setStrs("instance_ids", removeString(kp.strs("instance_ids"), inst.id))
			}
		}}, a.remover(inst))
	}
	return result{"job_id": j.id}, nil
}

func detachKeyPairs(a *account, r *request) (result, *apiError) {
	kps, insts, err := keypairMembers(a, r)
	if err != nil {
		return nil, err
	}
	for _, inst := range insts {
		for _, kp := range kps {
			if !slices.Contains(instMsg(inst).KeypairIds, kp.id) {
				return nil, errDenied("keypair [%s] is not attached to instance [%s]", kp.id, inst.id)
			}
		}
	}
	j := a.newJob(r, append(ids(kps), ids(insts)...))
	for i, inst := range insts {
		inst := inst
		a.begin(&inst.base, j, i, len(insts), op{label: "detaching keypairs", ok: func() {
			for _, kp := range kps {
				instMsg(inst).KeypairIds = removeString(instMsg(inst).KeypairIds, kp.id)
				kp.setStrs("instance_ids", removeString(kp.strs("instance_ids"), inst.id))
			}
		}}, a.remover(inst))
	}
	return result{"job_id": j.id}, nil
}
