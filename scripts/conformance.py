#!/usr/bin/env python3
"""Conformance: run `mtlscope analyze --format json` over a public capture corpus and compare each
flow's verdict and protocol with the corpus's truth.json (../shared/corpus, see its README).

Usage: scripts/conformance.py [--corpus DIR] [--bin PATH] [--min-agreement 0.9] [--verbose]

Captures that have a `<capture>.keylog.txt` beside them are run with `--keylog` (TLS 1.3
handshakes are then decrypted, proof `decrypted`); the run reports how many flows were proven
that way.

A truth flow agrees when mtlscope reports a flow between the same two endpoints (either
orientation) whose verdict is one of the truth's allowed verdicts and, when truth names a
protocol, whose protocol matches (upgrade flows may report either part). A resumed flow that
mtlscope linked to its original handshake (tls.resumed_from) may also carry the verdict truth
gives that original: truth marks such flows "inherits original session". Captures are never
copied into the project; this script only reads them where they are.
"""
import argparse
import json
import os
import subprocess
import sys


def norm(endpoint):
    """'[v6]:port' or 'v4:port' -> (ip, port)."""
    host, _, port = endpoint.rpartition(":")
    return host.strip("[]"), int(port)


def load_flows(binary, path):
    cmd = [binary, "analyze", "--format", "json", "--no-progress"]
    if os.path.exists(path + ".keylog.txt"):
        cmd += ["--keylog", path + ".keylog.txt"]
    proc = subprocess.run(
        cmd + [path],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode not in (0,):
        return None, f"exit {proc.returncode}: {proc.stderr.strip()[:300]}"
    try:
        doc = json.loads(proc.stdout)
    except json.JSONDecodeError as e:
        return None, f"invalid JSON: {e}"
    flows = {}
    for f in doc["flows"]:
        a = (f["client"]["ip"], f["client"]["port"])
        b = (f["server"]["ip"], f["server"]["port"])
        flows.setdefault(frozenset((a, b)), []).append(f)
    return flows, None


def origin_verdicts(f, entry, flows):
    """Truth's verdicts for the flow `f` says it resumed (tls.resumed_from), if truth lists it.

    A resumed session inherits the authentication of the handshake that created it (truth's own
    note: "inherits original session"), so a linked resumption may carry its origin's verdict.
    """
    origin = ((f.get("tls") or {}).get("resumed_from")) or {}
    if not origin:
        return set()
    by_id = {g["id"]: g for fs in flows.values() for g in fs}
    o = by_id.get(origin.get("flow"))
    if o is None:
        return set()
    ends = {(o["client"]["ip"], o["client"]["port"]), (o["server"]["ip"], o["server"]["port"])}
    for tf in entry["flows"]:
        if {norm(tf["client"]), norm(tf["server"])} == ends:
            return set(tf["verdicts"]) - {"handshake-failed"}
    return set()


def judge(truth_flow, ours, entry=None, flows=None):
    """Return (agrees, reason) for one truth flow."""
    if not ours:
        return False, "flow not reported"
    allowed = set(truth_flow["verdicts"])
    if truth_flow.get("resumed") and entry is not None:
        for f in ours:
            allowed |= origin_verdicts(f, entry, flows)
    proto = truth_flow.get("protocol")
    upgrade = truth_flow.get("upgrade")
    reasons = []
    for f in ours:
        ok_verdict = f["verdict"] in allowed
        ok_proto = proto is None or upgrade or f["protocol"] == proto
        if upgrade and f.get("upgrade") is None and f["protocol"] == "tls":
            ok_proto = False
            reasons.append("upgrade: plaintext part not shown")
        if ok_verdict and ok_proto:
            return True, ""
        reasons.append(f"got {f['protocol']}/{f['verdict']} ({f['evidence'][:90]})")
    return False, "; ".join(reasons)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=os.path.join(root, "..", "shared", "corpus"))
    ap.add_argument("--bin", default=os.path.join(root, "target", "release", "mtlscope"))
    ap.add_argument("--min-agreement", type=float, default=0.0)
    ap.add_argument("--verbose", "-v", action="store_true")
    args = ap.parse_args()

    truth_path = os.path.join(args.corpus, "truth.json")
    if not os.path.exists(truth_path):
        print(f"conformance: skipped: {truth_path} not found")
        return 0
    truth = json.load(open(truth_path))
    total = agreed = 0
    keylogged = decrypted = decrypted_agree = 0
    failures = []
    captures_ok = 0
    for name in sorted(truth):
        entry = truth[name]
        flows, err = load_flows(args.bin, os.path.join(args.corpus, name))
        if err:
            n = len(entry["flows"])
            total += n
            failures.append((name, "*", err))
            print(f"  FAIL {name}: {err}")
            continue
        ok = 0
        if os.path.exists(os.path.join(args.corpus, name) + ".keylog.txt"):
            keylogged += 1
        proven = [f for fs in flows.values() for f in fs if f.get("proof") == "decrypted"]
        decrypted += len(proven)
        for f in proven:
            if args.verbose:
                print(f"    decrypted {name}: {f['verdict']}: {f['evidence'][:100]}")
        for tf in entry["flows"]:
            key = frozenset((norm(tf["client"]), norm(tf["server"])))
            ours = flows.get(key, [])
            agrees, why = judge(tf, ours, entry, flows)
            ok += agrees
            decrypted_agree += agrees and any(f.get("proof") == "decrypted" for f in ours)
            if not agrees:
                failures.append((name, f"{tf['client']} -> {tf['server']}", f"want {tf['verdicts']}: {why}"))
        n = len(entry["flows"])
        total += n
        agreed += ok
        captures_ok += ok == n
        mark = "ok  " if ok == n else "MISS"
        if args.verbose or ok != n:
            print(f"  {mark} {name}: {ok}/{n} flows agree")
    pct = 100.0 * agreed / total if total else 100.0
    for name, flow, why in failures:
        print(f"  disagreement: {name} {flow}: {why}")
    print(
        f"conformance: {agreed}/{total} flows agree ({pct:.1f}%), "
        f"{captures_ok}/{len(truth)} captures fully agree"
    )
    print(
        f"conformance: {keylogged} captures run with --keylog; {decrypted} flows proven by "
        f"decryption (proof decrypted), {decrypted_agree} of them agreeing with truth"
    )
    if total and agreed / total < args.min_agreement:
        print(f"conformance: below the required {args.min_agreement:.0%}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
