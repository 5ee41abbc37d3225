/* Shared definitions of the testbed's BPF service load balancer (kubeProxyMode: ebpf).
 *
 * Every map and program name ends in _QQTAGQQQ: the loader replaces that placeholder with a
 * per-testbed, per-node tag of the same length before loading, because BPF object names and IDs
 * are host-global. Layouts here are mirrored byte for byte by testbed/proxy/ebpf/layout.py.
 */
#ifndef TESTBED_LB_H
#define TESTBED_LB_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define N(x) x##_QQTAGQQQ

#define SCOPE_SOCK 0 /* frontends seen by connect()/sendmsg() inside the node */
#define SCOPE_EXT 1  /* frontends seen by packets arriving on the node's uplink */

#define F_AFFINITY 1 /* sessionAffinity: ClientIP */
#define F_NO_SNAT 2  /* externalTrafficPolicy: Local (keep the client IP) */

#define AFF_SOCK 0 /* affinity client is a netns cookie (socket LB) */
#define AFF_IP 1   /* affinity client is an IPv4 source address (tc) */

#define ECONNREFUSED 111

struct svc_key {
	__be32 ip;
	__be16 port;
	__u8 proto;
	__u8 scope;
};

struct svc_val {
	__u32 svc_id;
	__u32 gen;           /* content hash of the backend list: slots live at (svc_id, gen, i) */
	__u16 count;         /* 0: no endpoints, refuse */
	__u8 flags;
	__u8 pad;
	__u32 aff_timeout;   /* seconds */
};

struct be_key {
	__u32 svc_id;
	__u32 gen;
	__u32 slot;
};

struct be_val {
	__be32 ip;
	__be16 port;
	__u16 pad;
};

struct bset_key { /* membership of a backend in (svc_id, gen): validates affinity hits */
	__u32 svc_id;
	__u32 gen;
	__be32 ip;
	__be16 port;
	__u16 pad;
};

struct aff_key {
	__u64 client;
	__u32 svc_id;
	__u32 kind;
};

struct aff_val {
	__u64 ts_ns;
	__be32 ip;
	__be16 port;
	__u16 pad;
};

struct rev_key {
	__u64 cookie;
	__be32 ip;
	__be16 port;
	__u16 pad;
};

struct rev_val {
	__be32 ip;
	__be16 port;
	__u16 pad;
};

struct cfg_val {
	__be32 node_ip;
	__u32 flags;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 131072);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct svc_key);
	__type(value, struct svc_val);
} N(svc) SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 524288);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct be_key);
	__type(value, struct be_val);
} N(be) SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 131072);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct bset_key);
	__type(value, __u32);
} N(bset) SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct aff_key);
	__type(value, struct aff_val);
} N(aff) SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct rev_key);
	__type(value, struct rev_val);
} N(rev) SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cfg_val);
} N(cfg) SEC(".maps");

/* Pick a backend of svc for client: a live affinity entry wins if that backend is still in
 * the service's current set; otherwise a random slot (and remember it when affinity is on). */
static __always_inline int pick_backend(const struct svc_val *svc, __u64 client, __u32 kind,
					struct be_val *out)
{
	struct aff_key ak = {.client = client, .svc_id = svc->svc_id, .kind = kind};
	__u64 now = 0;

	if (svc->flags & F_AFFINITY) {
		struct aff_val *av = bpf_map_lookup_elem(&N(aff), &ak);

		now = bpf_ktime_get_ns();
		if (av && now - av->ts_ns < (__u64)svc->aff_timeout * 1000000000ULL) {
			struct bset_key sk = {.svc_id = svc->svc_id, .gen = svc->gen,
					      .ip = av->ip, .port = av->port};

			if (bpf_map_lookup_elem(&N(bset), &sk)) {
				out->ip = av->ip;
				out->port = av->port;
				av->ts_ns = now;
				return 0;
			}
		}
	}
	struct be_key bk = {.svc_id = svc->svc_id, .gen = svc->gen,
			    .slot = bpf_get_prandom_u32() % svc->count};
	struct be_val *be = bpf_map_lookup_elem(&N(be), &bk);

	if (!be)
		return -1;
	out->ip = be->ip;
	out->port = be->port;
	if (svc->flags & F_AFFINITY) {
		struct aff_val nv = {.ts_ns = now, .ip = be->ip, .port = be->port};

		bpf_map_update_elem(&N(aff), &ak, &nv, BPF_ANY);
	}
	return 0;
}

#endif
