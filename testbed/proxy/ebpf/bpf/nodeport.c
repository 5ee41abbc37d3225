/* NodePort / externalIP / LoadBalancer traffic arriving on the node's uplink (tc clsact
 * ingress, direct action).
 *
 * The program picks a backend and hands the translation to the kernel's own NAT: it creates
 * the conntrack entry with the conntrack kfuncs, DNAT to the backend plus (externalTrafficPolicy
 * Cluster) SNAT to the node IP, and inserts it. Netfilter then rewrites this packet and every
 * later one in PREROUTING/POSTROUTING, and un-NATs the replies on whichever interface they come
 * back (eth0 from another node, tb0 from a local pod).
 */
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include "lb.h"

#define BPF_F_CURRENT_NETNS (-1)

/* Only the fields read here, relocated by CO-RE against the kernel's BTF. Complete (not
 * forward) declarations, so libbpf's kfunc prototype check, which compares struct kinds but
 * not members, accepts them. */
struct ip_ct_tcp {
	__u8 state;
} __attribute__((preserve_access_index));

union nf_conntrack_proto {
	struct ip_ct_tcp tcp;
} __attribute__((preserve_access_index));

struct nf_conn {
	union nf_conntrack_proto proto;
} __attribute__((preserve_access_index));

struct nf_conn___init {
	int opaque;
};

#define TCP_CONNTRACK_TIME_WAIT 7
#define TCP_CONNTRACK_CLOSE 8
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_ACK 0x10

struct bpf_ct_opts {
	__s32 netns_id;
	__s32 error;
	__u8 l4proto;
	__u8 dir;
	__u16 ct_zone_id;
	__u8 ct_zone_dir;
	__u8 reserved[3];
};

union nf_inet_addr {
	__u32 all[4];
	__be32 ip;
	__be32 ip6[4];
};

enum nf_nat_manip_type { NF_NAT_MANIP_SRC, NF_NAT_MANIP_DST };

extern struct nf_conn *bpf_skb_ct_lookup(struct __sk_buff *skb, struct bpf_sock_tuple *tuple,
					 __u32 tuple__sz, struct bpf_ct_opts *opts,
					 __u32 opts__sz) __ksym;
extern struct nf_conn___init *bpf_skb_ct_alloc(struct __sk_buff *skb,
					       struct bpf_sock_tuple *tuple, __u32 tuple__sz,
					       struct bpf_ct_opts *opts, __u32 opts__sz) __ksym;
extern struct nf_conn *bpf_ct_insert_entry(struct nf_conn___init *nfct) __ksym;
extern int bpf_ct_set_nat_info(struct nf_conn___init *nfct, union nf_inet_addr *addr, int port,
			       enum nf_nat_manip_type manip) __ksym;
extern void bpf_ct_release(struct nf_conn *ct) __ksym;
extern int bpf_ct_change_timeout(struct nf_conn *nfct, __u32 timeout) __ksym;

/* A SYN reusing the tuple of a closed connection (TIME_WAIT/CLOSE): conntrack would kill that
 * entry and track the SYN afresh *without* our NAT. Expire it now instead; the next lookup
 * garbage-collects it, and the SYN gets a new NATed entry below. */
static __always_inline struct nf_conn *lookup_live(struct __sk_buff *skb,
						    struct bpf_sock_tuple *tup, __u8 proto,
						    int syn)
{
	struct bpf_ct_opts opts = {.netns_id = BPF_F_CURRENT_NETNS, .l4proto = proto};
	struct nf_conn *ct = bpf_skb_ct_lookup(skb, tup, sizeof(tup->ipv4), &opts, sizeof(opts));

	if (!ct || !syn)
		return ct;
	__u8 state = ct->proto.tcp.state;

	if (state != TCP_CONNTRACK_TIME_WAIT && state != TCP_CONNTRACK_CLOSE)
		return ct;
	bpf_ct_change_timeout(ct, 0);
	bpf_ct_release(ct);
	struct bpf_ct_opts again = {.netns_id = BPF_F_CURRENT_NETNS, .l4proto = proto};

	return bpf_skb_ct_lookup(skb, tup, sizeof(tup->ipv4), &again, sizeof(again));
}

SEC("tc")
int N(np)(struct __sk_buff *skb)
{
	struct bpf_sock_tuple tup = {};
	struct iphdr ip;
	__be16 ports[2];
	__u8 tcp_flags = 0;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0 || ip.ihl < 5)
		return TC_ACT_OK;
	if (ip.protocol != IPPROTO_TCP && ip.protocol != IPPROTO_UDP)
		return TC_ACT_OK;
	if (ip.frag_off & bpf_htons(0x1fff)) /* non-first fragment: no ports */
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, ETH_HLEN + ip.ihl * 4, ports, sizeof(ports)) < 0)
		return TC_ACT_OK;
	if (ip.protocol == IPPROTO_TCP &&
	    bpf_skb_load_bytes(skb, ETH_HLEN + ip.ihl * 4 + 13, &tcp_flags, 1) < 0)
		return TC_ACT_OK;

	struct svc_key key = {.ip = ip.daddr, .port = ports[1], .proto = ip.protocol,
			      .scope = SCOPE_EXT};
	struct svc_val *svc = bpf_map_lookup_elem(&N(svc), &key);

	if (!svc)
		return TC_ACT_OK;

	struct nf_conn *ct;

	tup.ipv4.saddr = ip.saddr;
	tup.ipv4.daddr = ip.daddr;
	tup.ipv4.sport = ports[0];
	tup.ipv4.dport = ports[1];
	ct = lookup_live(skb, &tup, ip.protocol,
			 (tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN);
	if (ct) { /* known flow (either direction): the kernel's NAT already owns it */
		bpf_ct_release(ct);
		return TC_ACT_OK;
	}
	if (svc->count == 0) /* externalTrafficPolicy Local without local endpoints, or none */
		return TC_ACT_SHOT;

	struct be_val be = {};
	__u32 zero = 0;
	struct cfg_val *cfg = bpf_map_lookup_elem(&N(cfg), &zero);

	if (!cfg || pick_backend(svc, ip.saddr, AFF_IP, &be) < 0)
		return TC_ACT_SHOT;

	struct bpf_ct_opts aopts = {.netns_id = BPF_F_CURRENT_NETNS, .l4proto = ip.protocol};
	struct nf_conn___init *nfct =
		bpf_skb_ct_alloc(skb, &tup, sizeof(tup.ipv4), &aopts, sizeof(aopts));
	union nf_inet_addr addr = {};

	if (!nfct)
		return TC_ACT_SHOT;
	addr.ip = be.ip;
	bpf_ct_set_nat_info(nfct, &addr, bpf_ntohs(be.port), NF_NAT_MANIP_DST);
	if (!(svc->flags & F_NO_SNAT)) {
		addr.ip = cfg->node_ip;
		bpf_ct_set_nat_info(nfct, &addr, -1, NF_NAT_MANIP_SRC);
	}
	ct = bpf_ct_insert_entry(nfct);
	if (ct)
		bpf_ct_release(ct);
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
