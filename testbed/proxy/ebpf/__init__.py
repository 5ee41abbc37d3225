"""`kubeProxyMode: ebpf`: a kube-proxy replacement in BPF, the way Cilium does it.

Socket-level load balancing (cgroup connect4/sendmsg4/recvmsg4/getpeername4 on the node's
cgroup) for every process on the node, and a tc program on the uplink that hands NodePort /
externalIP / LoadBalancer DNAT (+SNAT) to the kernel's NAT through the conntrack kfuncs.
Modules: `bpf/` (C), `build` (clang), `layout` (map bytes), `adapt` + `render` (pure),
`syscall` + `maps` (bpf() I/O), `loader` (bpftool/tc), `backend` (the Backend protocol).
"""

__all__ = ["EbpfBackend"]


def __getattr__(name: str):
    # Lazy, so `python3 -m testbed.proxy.ebpf.build` (image build) imports nothing else.
    if name == "EbpfBackend":
        from testbed.proxy.ebpf.backend import EbpfBackend

        return EbpfBackend
    raise AttributeError(name)
