"""Cluster DNS for the testbed (Kubernetes DNS-Based Service Discovery spec 1.1.0).

Modules:

* :mod:`~testbed.dns.records` - pure: Services/EndpointSlices/Pods -> :class:`Zone`
  (with :mod:`~testbed.dns.objects` and :mod:`~testbed.dns.names`).
* :mod:`~testbed.dns.index` - the zone kept current per watch event.
* :mod:`~testbed.dns.server` - asyncio UDP+TCP server fed by the store's watches,
  with a response-bytes cache, forwarding, EDNS0/truncation and metrics.
* :mod:`~testbed.dns.upstream` - authoritative server for a test zone (external host).
* :mod:`~testbed.dns.bench_support` - dnsperf/dnsmasq inputs and a UDP flood client.

Run ``python3 -m testbed.dns --help`` and ``python3 -m testbed.dns.upstream --help``.
"""

from testbed.dns.records import SCHEMA_VERSION, Answer, Record, Zone, build_zone

__all__ = ["SCHEMA_VERSION", "Answer", "Record", "Zone", "build_zone"]
