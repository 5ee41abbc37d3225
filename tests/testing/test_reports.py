"""Pure report helpers: reachability grids, ab parsing, JUnit verdict parsing."""

from __future__ import annotations

from testbed.bench.dataplane import parse_ab
from testbed.testing import reachability
from testbed.testing.matrix import parse_junit, suite_of

WANT = {("x/a", "x/a"): True, ("x/a", "x/b"): False, ("x/b", "x/a"): True,
        ("x/b", "x/b"): True}


def test_mismatches_are_found_and_marked():
    got = dict(WANT) | {("x/a", "x/b"): True}
    assert reachability.mismatches(WANT, got) == [("x/a", "x/b")]
    assert reachability.mismatches(WANT, dict(WANT)) == []
    text = reachability.render(WANT, got)
    assert "MISMATCH" in text.splitlines()[2] and "MISMATCH" not in text.splitlines()[3]
    html = reachability.to_html(WANT, got)
    assert "1 mismatches" in html and "ok (expected deny)" in html


def test_parse_ab_report():
    out = ("Failed requests:        0\nRequests per second:    4721.13 [#/sec] (mean)\n"
           "Percentage of the requests served within a certain time (ms)\n"
           "  50%      2\n  66%      2\n  99%      3\n 100%      9 (longest request)\n")
    assert parse_ab(out) == {"requests_per_second": 4721.13, "failed": 0, "p50_ms": 2,
                             "p99_ms": 3}


def test_junit_is_grouped_per_suite(tmp_path):
    xml = tmp_path / "j.xml"
    xml.write_text(
        '<testsuites><testsuite>'
        '<testcase classname="suites.dns.test_dns" name="a"/>'
        '<testcase classname="suites.dns.test_dns" name="b"><failure message="x"/></testcase>'
        '<testcase classname="suites.policy.test_policy" name="c">'
        '<skipped message="needs podNetwork: flat"/></testcase>'
        '<testcase classname="tests.cni.test_x" name="d"/>'
        '</testsuite></testsuites>')
    results = parse_junit(xml, "iptables")
    assert (results["dns"].passed, results["dns"].failed) == (1, 1)
    assert results["policy"].reasons == ["needs podNetwork: flat"]
    assert results["unit"].passed == 1
    assert suite_of("suites.pod_to_pod.test_pod_to_pod") == "pod_to_pod"
