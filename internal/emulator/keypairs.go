package emulator

import (
	"crypto/rand"
	"encoding/base64"
	"slices"
	"strings"
)

// keypair has no status. Keys are random placeholders, not usable key material.
type keypair struct {
	base
	encryptMethod string
	pubKey        string
	instanceIDs   []string
}

func kpBase(v *keypair) *base { return &v.base }

type keypairOut struct {
	KeypairID     string   `json:"keypair_id"`
	KeypairName   string   `json:"keypair_name"`
	Description   string   `json:"description"`
	EncryptMethod string   `json:"encrypt_method"`
	PubKey        string   `json:"pub_key"`
	InstanceIDs   []string `json:"instance_ids"`
	CreateTime    jtime    `json:"create_time"`
	Owner         string   `json:"owner"`
	Tags          []tagOut `json:"tags"`
}

func init() {
	register("CreateKeyPair", createKeyPair)
	register("DescribeKeyPairs", describeKeyPairs)
	register("DeleteKeyPairs", deleteKeyPairs)
	register("AttachKeyPairs", attachKeyPairs)
	register("DetachKeyPairs", detachKeyPairs)
	register("ModifyKeyPairAttributes", modifyKeyPairAttributes)
}

func randomB64(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func createKeyPair(a *account, r *request) (result, *apiError) {
	mode, err := r.oneOf("mode", "system", "system", "user")
	if err != nil {
		return nil, err
	}
	method, err := r.oneOf("encrypt_method", "ssh-rsa", "ssh-rsa", "ssh-dss")
	if err != nil {
		return nil, err
	}
	kp := &keypair{base: a.newBase(r, "keypair", "kp", r.str("keypair_name"), ""), encryptMethod: method}
	res := result{"keypair_id": kp.id}
	if mode == "user" {
		pub, err := r.required("public_key")
		if err != nil {
			return nil, err
		}
		if !strings.HasPrefix(pub, "ssh-") && !strings.HasPrefix(pub, "ecdsa-") {
			return nil, errInvalid("parameter [public_key] is not an OpenSSH public key")
		}
		kp.pubKey = pub
	} else {
		kp.pubKey = method + " AAAA" + randomB64(48) + " " + kp.id
		res["private_key"] = "-----BEGIN RSA PRIVATE KEY-----\n" + randomB64(96) +
			"\n-----END RSA PRIVATE KEY-----\n"
	}
	a.keypairs[kp.id] = kp
	return res, nil
}

func describeKeyPairs(a *account, r *request) (result, *apiError) {
	if _, err := r.integer("verbose", 0); err != nil {
		return nil, err
	}
	keep := a.describeFilter(r, "keypairs")
	inst, method := strings.TrimSpace(r.str("instance_id")), strings.TrimSpace(r.str("encrypt_method"))
	items := filterSorted(a.keypairs, kpBase, func(v *keypair) bool {
		return keep(&v.base) && (inst == "" || slices.Contains(v.instanceIDs, inst)) &&
			(method == "" || v.encryptMethod == method)
	})
	return describeResult(r, "keypair_set", items, func(v *keypair) keypairOut {
		ids := slices.Clone(v.instanceIDs)
		if ids == nil {
			ids = []string{}
		}
		return keypairOut{KeypairID: v.id, KeypairName: v.name, Description: v.description, EncryptMethod: v.encryptMethod,
			PubKey: v.pubKey, InstanceIDs: ids, CreateTime: jtime(v.created), Owner: a.owner, Tags: a.tagsOf(v.id)}
	})
}

func deleteKeyPairs(a *account, r *request) (result, *apiError) {
	idl, err := r.requiredList("keypairs")
	if err != nil {
		return nil, err
	}
	kps, err := lookup(r, a.keypairs, idl, kpBase)
	if err != nil {
		return nil, err
	}
	for _, kp := range kps {
		if err := kp.idle(); err != nil {
			return nil, err
		}
		if len(kp.instanceIDs) > 0 {
			return nil, errDenied("keypair [%s] is attached to instances %v, detach it first", kp.id, kp.instanceIDs)
		}
	}
	for _, kp := range kps {
		delete(a.keypairs, kp.id)
		a.dropTags(kp.id)
	}
	return result{"keypairs": idl}, nil
}

// keypairMembers parses keypairs.N and instances.N.
func keypairMembers(a *account, r *request) ([]*keypair, []*instance, *apiError) {
	kids, err := r.requiredList("keypairs")
	if err != nil {
		return nil, nil, err
	}
	iids, err := r.requiredList("instances")
	if err != nil {
		return nil, nil, err
	}
	kps, err := lookup(r, a.keypairs, kids, kpBase)
	if err != nil {
		return nil, nil, err
	}
	insts, err := lookup(r, a.instances, iids, instBase)
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
	j := a.newJob(r, append(ids(kps, kpBase), ids(insts, instBase)...))
	for i, inst := range insts {
		inst := inst
		var added []*keypair
		for _, kp := range kps {
			if !slices.Contains(inst.keypairIDs, kp.id) {
				inst.keypairIDs = append(inst.keypairIDs, kp.id)
				kp.instanceIDs = append(kp.instanceIDs, inst.id)
				added = append(added, kp)
			}
		}
		a.begin(&inst.base, j, i, len(insts), op{label: "attaching keypairs", undo: func() {
			for _, kp := range added {
				inst.keypairIDs = removeString(inst.keypairIDs, kp.id)
				kp.instanceIDs = removeString(kp.instanceIDs, inst.id)
			}
		}}, remover(a, a.instances, inst.id))
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
			if !slices.Contains(inst.keypairIDs, kp.id) {
				return nil, errDenied("keypair [%s] is not attached to instance [%s]", kp.id, inst.id)
			}
		}
	}
	j := a.newJob(r, append(ids(kps, kpBase), ids(insts, instBase)...))
	for i, inst := range insts {
		inst := inst
		a.begin(&inst.base, j, i, len(insts), op{label: "detaching keypairs", ok: func() {
			for _, kp := range kps {
				inst.keypairIDs = removeString(inst.keypairIDs, kp.id)
				kp.instanceIDs = removeString(kp.instanceIDs, inst.id)
			}
		}}, remover(a, a.instances, inst.id))
	}
	return result{"job_id": j.id}, nil
}

func modifyKeyPairAttributes(a *account, r *request) (result, *apiError) {
	id, err := r.required("keypair")
	if err != nil {
		return nil, err
	}
	kp, err := lookupOne(r, a.keypairs, id, kpBase)
	if err != nil {
		return nil, err
	}
	kp.modify(r, "keypair_name")
	return result{}, nil
}
