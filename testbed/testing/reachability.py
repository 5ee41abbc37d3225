"""Reachability matrices: observed with real connections (parallel, bounded), expected from
the policy oracle, and printed side by side with every mismatch marked."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from testbed.cluster.read import merged

PROBE_TIMEOUT = 0.8  # a denied probe costs at most this


def cluster_inputs(store, namespaces: list[str] | None = None):
    """(policy Pods, namespace labels, policy dicts) as the oracle takes them."""
    from testbed.policy import Pod

    pods = [Pod.from_k8s(p) for p in merged(store, "pods")
            if p["status"].get("podIP") and not p["spec"].get("hostNetwork")
            and not p["metadata"].get("deletionTimestamp")
            and (namespaces is None or p["metadata"]["namespace"] in namespaces)]
    ns_labels = {n["metadata"]["name"]: n["metadata"].get("labels") or {}
                 for n in merged(store, "namespaces")}
    policies = merged(store, "networkpolicies")
    for p in policies:
        p.pop("status", None)
    return pods, ns_labels, policies


def expected(store, namespaces: list[str] | None, port: int, protocol: str) -> dict:
    from testbed.policy import Oracle

    pods, ns_labels, policies = cluster_inputs(store, namespaces)
    return Oracle(pods, ns_labels, policies).matrix(port, protocol)


def observed(cluster, pods, port: int, protocol: str) -> dict[tuple[str, str], bool]:
    """Probe every ordered pair (one exec per source, sources in parallel)."""
    request = "hostname"

    def row(src):
        targets = [{"host": dst.ip, "port": port, "protocol": protocol.lower(),
                    "request": request, "timeout": PROBE_TIMEOUT} for dst in pods]
        results = cluster.probe(src, targets)
        return {(str(src), str(dst)): r["ok"] for dst, r in zip(pods, results, strict=True)}

    out: dict[tuple[str, str], bool] = {}
    with ThreadPoolExecutor(max_workers=8) as pool:
        for part in pool.map(row, pods):
            out.update(part)
    return out


def render(expected_m: dict, observed_m: dict) -> str:
    """Two grids (expected | observed); `.` allowed, `X` denied, `!` marks a mismatch."""
    keys = sorted({k[0] for k in expected_m} | {k[1] for k in expected_m})
    width = max(len(k) for k in keys) if keys else 4
    head = " " * width + "  " + " ".join(k.split("/")[-1][:3].ljust(3) for k in keys)
    lines = [f"expected{' ' * (len(head) - 8)}   observed", f"{head}   {head}"]
    for src in keys:
        def cells(m, src=src):
            return " ".join(("." if m.get((src, d)) else "X").ljust(3) for d in keys)

        marks = "".join("!" if expected_m.get((src, d)) != observed_m.get((src, d)) else " "
                        for d in keys)
        lines.append(f"{src.ljust(width)}  {cells(expected_m)}   {src.ljust(width)}  "
                     f"{cells(observed_m)} {marks.strip() and 'MISMATCH ' + marks}")
    return "\n".join(lines)


def mismatches(expected_m: dict, observed_m: dict) -> list[tuple[str, str]]:
    return sorted(k for k in expected_m if expected_m[k] != observed_m.get(k))


def to_json(expected_m: dict, observed_m: dict) -> str:
    def flat(m):
        return [{"from": s, "to": d, "allowed": v} for (s, d), v in sorted(m.items())]

    return json.dumps({"expected": flat(expected_m), "observed": flat(observed_m),
                       "mismatches": [list(k) for k in mismatches(expected_m, observed_m)]},
                      indent=2)


def to_html(expected_m: dict, observed_m: dict, title: str = "reachability") -> str:
    """A self-contained HTML grid: green allowed, red denied, a thick border on mismatches."""
    keys = sorted({k[0] for k in expected_m} | {k[1] for k in expected_m})
    head = "".join(f"<th>{k}</th>" for k in keys)
    rows = []
    for src in keys:
        cells = []
        for dst in keys:
            want, got = expected_m.get((src, dst)), observed_m.get((src, dst))
            color = "#9be29b" if got else "#f29b9b"
            border = "3px solid black" if want != got else "1px solid #ccc"
            mark = ("ok" if got else "deny") + ("" if want == got else " (expected "
                                                  + ("ok" if want else "deny") + ")")
            cells.append(f'<td style="background:{color};border:{border}">{mark}</td>')
        rows.append(f"<tr><th>{src}</th>{''.join(cells)}</tr>")
    return (f"<!doctype html><meta charset=utf-8><title>{title}</title><h1>{title}</h1>"
            f"<p>rows: from, columns: to; {len(mismatches(expected_m, observed_m))} "
            f"mismatches</p><table style='border-collapse:collapse'><tr><th></th>{head}</tr>"
            f"{''.join(rows)}</table>")
