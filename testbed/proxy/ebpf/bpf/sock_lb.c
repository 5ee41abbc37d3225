/* Socket-level service load balancing (Cilium's "socket LB" / kube-proxy replacement).
 *
 * connect4/sendmsg4 rewrite a service frontend (ClusterIP, node IP:NodePort, externalIP,
 * LoadBalancer IP) to a backend before the socket ever sends a packet, so no NAT and no
 * conntrack entry is needed; recvmsg4/getpeername4 translate the backend back to the frontend
 * the application asked for. Attached (multi) to the node's cgroup, they cover the node and
 * every pod process on it.
 */
#include "lb.h"

static __always_inline int translate(struct bpf_sock_addr *ctx, __u8 proto)
{
	struct svc_key key = {.ip = ctx->user_ip4, .port = (__be16)ctx->user_port,
			      .proto = proto, .scope = SCOPE_SOCK};
	struct svc_val *svc = bpf_map_lookup_elem(&N(svc), &key);
	struct be_val be = {};

	if (!svc)
		return 1;
	if (svc->count == 0) {
		/* no endpoints: fail the call at once with ECONNREFUSED (kube-proxy REJECTs) */
		bpf_set_retval(-ECONNREFUSED);
		return 0;
	}
	if (pick_backend(svc, bpf_get_netns_cookie(ctx), AFF_SOCK, &be) < 0)
		return 1;

	struct rev_key rk = {.cookie = bpf_get_socket_cookie(ctx), .ip = be.ip, .port = be.port};
	struct rev_val rv = {.ip = key.ip, .port = key.port};

	bpf_map_update_elem(&N(rev), &rk, &rv, BPF_ANY);
	ctx->user_ip4 = be.ip;
	ctx->user_port = be.port;
	return 1;
}

static __always_inline void reverse(struct bpf_sock_addr *ctx)
{
	struct rev_key rk = {.cookie = bpf_get_socket_cookie(ctx), .ip = ctx->user_ip4,
			     .port = (__be16)ctx->user_port};
	struct rev_val *rv = bpf_map_lookup_elem(&N(rev), &rk);

	if (rv) {
		ctx->user_ip4 = rv->ip;
		ctx->user_port = rv->port;
	}
}

SEC("cgroup/connect4")
int N(c4)(struct bpf_sock_addr *ctx)
{
	if (ctx->protocol == IPPROTO_TCP || ctx->protocol == IPPROTO_UDP)
		return translate(ctx, ctx->protocol);
	return 1;
}

SEC("cgroup/sendmsg4")
int N(sm4)(struct bpf_sock_addr *ctx)
{
	return translate(ctx, IPPROTO_UDP);
}

SEC("cgroup/recvmsg4")
int N(rm4)(struct bpf_sock_addr *ctx)
{
	reverse(ctx);
	return 1;
}

SEC("cgroup/getpeername4")
int N(gp4)(struct bpf_sock_addr *ctx)
{
	reverse(ctx);
	return 1;
}

char _license[] SEC("license") = "GPL";
