"""A userspace ARP responder for LoadBalancer IPs (MetalLB L2 mode's way).

The elected node answers ARP requests for the IPs it announces with its own MAC and sends a
gratuitous ARP when it takes an IP over. The IP is not configured on any interface: packets to
it reach the node and are DNATed by the proxy before routing. When the node (or this process)
goes away, nobody answers until another node is elected.
"""

from __future__ import annotations

import socket
import struct
import threading
from ipaddress import IPv4Address

ETH_P_ARP = 0x0806
ARP_REQUEST = 1
ARP_REPLY = 2
BROADCAST = b"\xff" * 6


def parse_arp_request(frame: bytes) -> tuple[bytes, str, str] | None:
    """(sender MAC, sender IP, target IP) of an Ethernet ARP request, else None (pure)."""
    if len(frame) < 42 or struct.unpack("!H", frame[12:14])[0] != ETH_P_ARP:
        return None
    htype, ptype, hlen, plen, op = struct.unpack("!HHBBH", frame[14:22])
    if (htype, ptype, hlen, plen, op) != (1, 0x0800, 6, 4, ARP_REQUEST):
        return None
    sender_mac = frame[22:28]
    sender_ip = str(IPv4Address(frame[28:32]))
    target_ip = str(IPv4Address(frame[38:42]))
    return sender_mac, sender_ip, target_ip


def arp_frame(op: int, src_mac: bytes, src_ip: str, dst_mac: bytes, dst_ip: str,
              eth_dst: bytes | None = None) -> bytes:
    """An Ethernet frame carrying one ARP packet (pure)."""
    eth = (eth_dst or dst_mac) + src_mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + src_mac + IPv4Address(src_ip).packed \
        + dst_mac + IPv4Address(dst_ip).packed
    return eth + arp


def gratuitous(mac: bytes, ip: str) -> bytes:
    return arp_frame(ARP_REPLY, mac, ip, BROADCAST, ip, eth_dst=BROADCAST)


def mac_bytes(text: str) -> bytes:
    return bytes(int(part, 16) for part in text.split(":"))


class ArpResponder:
    """Answers ARP for a changing set of IPs on one interface (a daemon thread)."""

    def __init__(self, iface: str = "eth0") -> None:
        self.iface = iface
        with open(f"/sys/class/net/{iface}/address") as f:
            self.mac = mac_bytes(f.read().strip())
        self.ips: frozenset[str] = frozenset()
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
        self.sock.bind((iface, ETH_P_ARP))
        self.thread = threading.Thread(target=self._serve, name="arp", daemon=True)
        self.thread.start()

    def announce(self, ips: set[str]) -> None:
        """Set the announced IPs; newly taken ones get a gratuitous ARP."""
        new = set(ips) - self.ips
        self.ips = frozenset(ips)
        for ip in sorted(new):
            for _ in range(2):
                self.sock.send(gratuitous(self.mac, ip))

    def _serve(self) -> None:
        while True:
            try:
                frame = self.sock.recv(2048)
            except OSError:
                return
            request = parse_arp_request(frame)
            if request is None:
                continue
            sender_mac, sender_ip, target_ip = request
            if target_ip in self.ips:
                self.sock.send(arp_frame(ARP_REPLY, self.mac, target_ip, sender_mac, sender_ip))
